// Length-prefixed frames on a byte stream: [u32 length][payload].
export const MAX_FRAME = 256 << 20; // snapshots travel as one frame

export function frame(payload: Buffer): Buffer {
  const h = Buffer.allocUnsafe(4);
  h.writeUInt32LE(payload.length, 0);
  return Buffer.concat([h, payload]);
}

/** Accumulates stream chunks and yields whole frames; throws on a frame larger than the limit. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private have = 0;

  constructor(private readonly max = MAX_FRAME) {}

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.have += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.have < 4) break;
      const head = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = [head];
      const len = head.readUInt32LE(0);
      if (len > this.max) throw new Error(`frame of ${len} bytes exceeds the ${this.max}-byte limit`);
      if (this.have < 4 + len) break;
      out.push(head.subarray(4, 4 + len));
      const rest = head.subarray(4 + len);
      this.chunks = rest.length ? [rest] : [];
      this.have = rest.length;
    }
    return out;
  }
}
