// An alknet/call responder on the official iroh build (spec iroh.md §10.5): a Go node calls
// demo/echo and demo/ticker on it over iroh.
//
//   node responder.mjs
//
// Prints "id <64 hex digits>" and "addr <127.0.0.1:port>", serves until stdin ends.
import { randomBytes } from 'node:crypto';
import iroh from '@number0/iroh';
import { ALPN, FrameReader, bytesToHex, writeFrame } from './frames.mjs';

const { Endpoint, RelayMode } = iroh;

// serveStream answers every request read from one stream on that stream (protocol §4.1).
async function serveStream(bi) {
  const reader = new FrameReader(bi.recv);
  const running = [];
  for (;;) {
    const e = await reader.next();
    if (e === null) break;
    if (e.type !== 'call.requested') continue;
    running.push(answer(bi.send, e));
  }
  await Promise.all(running);
  await bi.send.finish();
}

let writing = Promise.resolve();
function send(stream, envelope) { // frames are written one at a time
  writing = writing.then(() => writeFrame(stream, envelope));
  return writing;
}

async function answer(stream, e) {
  const { operationId, input } = e.payload;
  const op = String(operationId ?? '').replace(/^\//, '');
  if (op === 'demo/echo') {
    await send(stream, { type: 'call.responded', id: e.id, payload: { output: input ?? {} } });
  } else if (op === 'demo/ticker') {
    const count = input?.count ?? 3;
    for (let i = 0; i < count; i++) {
      await send(stream, { type: 'call.responded', id: e.id, payload: { output: { tick: i } } });
    }
    await send(stream, { type: 'call.completed', id: e.id, payload: {} });
  } else {
    await send(stream, { type: 'call.error', id: e.id,
      payload: { code: 'NOT_FOUND', message: `operation ${op} not found`, retryable: false } });
  }
}

async function serveConn(conn) {
  for (;;) {
    let bi;
    try {
      bi = await conn.acceptBi();
    } catch {
      return; // the connection ended
    }
    serveStream(bi).catch((err) => console.error(`responder: stream: ${err.message}`));
  }
}

const b = Endpoint.builder();
b.applyMinimal();
b.relayMode(RelayMode.disabled());
b.secretKey(Array.from(randomBytes(32)));
b.alpns([ALPN]);
b.bindAddr('127.0.0.1:0');
const ep = await b.bind();
const bound = ep.boundSockets().find((a) => a.startsWith('127.0.0.1:'));
console.log(`id ${bytesToHex(ep.id().toBytes())}`);
console.log(`addr ${bound}`);

process.stdin.resume();
process.stdin.on('end', async () => {
  await ep.close();
  process.exit(0);
});
for (;;) {
  const incoming = await ep.acceptNext();
  if (incoming === null) break;
  incoming.accept().then((a) => a.connect()).then(serveConn)
    .catch((err) => console.error(`responder: accept: ${err.message}`));
}
