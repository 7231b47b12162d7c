// The official iroh build (@number0/iroh) calls an alknet node over iroh (spec iroh.md §10.5).
//
//   node peer.mjs <node key, 64 hex digits> <ip:port of its iroh endpoint>
//
// Prints "ok <check>" per passing check and exits 0; the first failure prints "FAIL <check>:
// <why>" and exits 1.
import { randomBytes } from 'node:crypto';
import iroh from '@number0/iroh';
import { ALPN, FrameReader, bytesToHex, hexToBytes, withTimeout, writeFrame } from './frames.mjs';

const { Endpoint, EndpointAddr, EndpointId, RelayMode } = iroh;
const [keyHex, addr] = process.argv.slice(2);
if (!keyHex || !addr) {
  console.error('usage: node peer.mjs <node key hex> <ip:port>');
  process.exit(2);
}

let seq = 0;
const newId = () => `js-${process.pid}-${++seq}`;

// call sends one request on a fresh stream, FINs, and returns the events until the stream ends.
async function call(conn, operationId, input, { abortAfterMs } = {}) {
  const id = newId();
  const bi = await conn.openBi();
  await writeFrame(bi.send, { type: 'call.requested', id, payload: { operationId, input } });
  await bi.send.finish();
  if (abortAfterMs !== undefined) {
    await new Promise((r) => setTimeout(r, abortAfterMs));
    const fresh = await conn.openBi(); // aborts travel on a fresh stream (protocol §4.2)
    await writeFrame(fresh.send, { type: 'call.aborted', id, payload: {} });
    await fresh.send.finish();
  }
  const reader = new FrameReader(bi.recv);
  const events = [];
  for (;;) {
    const e = await reader.next();
    if (e === null) return { id, events };
    if (e.id !== id) throw new Error(`event for id ${e.id}, want ${id}`);
    events.push(e);
  }
}

function expect(cond, why) {
  if (!cond) throw new Error(why);
}

const checks = [
  ['echo', async (conn) => {
    const { events } = await call(conn, 'demo/echo', { text: 'hi from js' });
    expect(events.length === 1 && events[0].type === 'call.responded', `events ${JSON.stringify(events)}`);
    expect(events[0].payload.output.text === 'hi from js', `output ${JSON.stringify(events[0].payload)}`);
  }],
  ['not_found', async (conn) => {
    const { events } = await call(conn, 'demo/nope', {});
    expect(events.length === 1 && events[0].type === 'call.error' && events[0].payload.code === 'NOT_FOUND',
      `events ${JSON.stringify(events)}`);
  }],
  ['subscription', async (conn) => {
    const { events } = await call(conn, 'demo/ticker', { count: 3, interval_ms: 5 });
    const types = events.map((e) => e.type).join(',');
    expect(types === 'call.responded,call.responded,call.responded,call.completed', `events ${types}`);
    expect(events.slice(0, 3).every((e, i) => e.payload.output.tick === i), `items ${JSON.stringify(events)}`);
  }],
  ['services_list', async (conn) => {
    const { events } = await call(conn, 'services/list', {});
    expect(events.length === 1 && events[0].type === 'call.responded', `events ${JSON.stringify(events)}`);
    const text = JSON.stringify(events[0].payload.output);
    expect(text.includes('demo/echo'), `services/list lacks demo/echo: ${text.slice(0, 200)}`);
  }],
  ['abort_fresh_stream', async (conn) => {
    const start = Date.now();
    const { events } = await call(conn, 'demo/sleep', { ms: 30000 }, { abortAfterMs: 200 });
    const took = Date.now() - start;
    expect(events.length === 0, `an aborted call answered: ${JSON.stringify(events)}`);
    expect(took < 5000, `the aborted call's stream stayed open ${took} ms`);
  }],
  ['node_info', async (conn) => {
    const { events } = await call(conn, 'node/info', {});
    expect(events.length === 1 && events[0].type === 'call.responded', `events ${JSON.stringify(events)}`);
    const fp = events[0].payload.output.fingerprint;
    expect(fp === `ed25519:${keyHex}`, `fingerprint ${fp}, want ed25519:${keyHex}`);
  }],
];

const b = Endpoint.builder();
b.applyMinimal();
b.relayMode(RelayMode.disabled());
b.secretKey(Array.from(randomBytes(32)));
b.bindAddr('127.0.0.1:0');
const ep = await b.bind();
let failed = false;
try {
  const target = new EndpointAddr(EndpointId.fromBytes(hexToBytes(keyHex)), null, [addr]);
  const conn = await withTimeout(ep.connect(target, ALPN), 10000, 'connect');
  expect(bytesToHex(conn.remoteId().toBytes()) === keyHex, 'remote id differs from the dialled key');
  console.log('ok connect');
  for (const [name, check] of checks) {
    try {
      await withTimeout(check(conn), 15000, name);
      console.log(`ok ${name}`);
    } catch (e) {
      console.log(`FAIL ${name}: ${e.message}`);
      failed = true;
      break;
    }
  }
  conn.close(0n, Array.from(Buffer.from('done')));
} catch (e) {
  console.log(`FAIL connect: ${e.message}`);
  failed = true;
}
await ep.close();
process.exit(failed ? 1 : 0);
