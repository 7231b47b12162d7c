// alknet/call framing (docs/protocol.md §2): a 4-byte big-endian length, then one JSON envelope.
// Written from the protocol document alone; nothing here is shared with alknet's Go code.

const MAX_FRAME = 16 << 20;

export function encodeFrame(envelope) {
  const body = Buffer.from(JSON.stringify(envelope), 'utf8');
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return Array.from(out);
}

export async function writeFrame(send, envelope) {
  await send.writeAll(encodeFrame(envelope));
}

// FrameReader yields the envelopes read from an iroh RecvStream; null at the clean end.
export class FrameReader {
  constructor(recv) {
    this.recv = recv;
    this.buf = Buffer.alloc(0);
    this.eof = false;
  }

  async fill(n) {
    while (this.buf.length < n && !this.eof) {
      const chunk = await this.recv.read(65536);
      if (chunk.length === 0) {
        this.eof = true;
      } else {
        this.buf = Buffer.concat([this.buf, Buffer.from(chunk)]);
      }
    }
    return this.buf.length >= n;
  }

  async next() {
    if (!(await this.fill(4))) {
      if (this.buf.length !== 0) throw new Error('truncated frame prefix');
      return null;
    }
    const n = this.buf.readUInt32BE(0);
    if (n === 0 || n > MAX_FRAME) throw new Error(`bad frame length ${n}`);
    if (!(await this.fill(4 + n))) throw new Error('truncated frame body');
    const body = this.buf.subarray(4, 4 + n).toString('utf8');
    this.buf = this.buf.subarray(4 + n);
    return JSON.parse(body);
  }
}

export const ALPN = Array.from(Buffer.from('alknet/call'));

export function hexToBytes(hex) {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`not a 64-digit hex key: ${hex}`);
  return Array.from(Buffer.from(hex, 'hex'));
}

export function bytesToHex(bytes) {
  return Buffer.from(bytes).toString('hex');
}

export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
