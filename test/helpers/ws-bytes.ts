/**
 * A WebSocket client written in bytes over node:net, for driving a server with exactly the frames
 * a test means (masked or not, cut anywhere, broken on purpose) and reading back exactly what the
 * server wrote.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { withTimeout } from './wait.js';

export const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export interface FrameSpec {
  fin?: boolean;
  /** Bits 0x40, 0x20, 0x10 of the first byte. */
  rsv?: number;
  masked?: boolean;
  /** Force a length form: 7-bit, 16-bit (126) or 64-bit (127), or write this 64-bit length in place of the payload's. */
  lengthForm?: 7 | 16 | 64;
  declaredLength?: bigint;
}

/** A client-to-server frame (masked unless told otherwise). */
export function frame(opcode: number, payload: Buffer | string, spec: FrameSpec = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const { fin = true, rsv = 0, masked = true } = spec;
  const form = spec.lengthForm ?? (data.length < 126 ? 7 : data.length < 65_536 ? 16 : 64);
  const head: number[] = [(fin ? 0x80 : 0) | rsv | opcode];
  const maskBit = masked ? 0x80 : 0;
  let extended = Buffer.alloc(0);
  if (form === 7) head.push(maskBit | data.length);
  else if (form === 16) {
    head.push(maskBit | 126);
    extended = Buffer.alloc(2);
    extended.writeUInt16BE(data.length);
  } else {
    head.push(maskBit | 127);
    extended = Buffer.alloc(8);
    extended.writeBigUInt64BE(spec.declaredLength ?? BigInt(data.length));
  }
  if (!masked) return Buffer.concat([Buffer.from(head), extended, data]);
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const body = Buffer.from(data);
  for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ key[i & 3]!;
  return Buffer.concat([Buffer.from(head), extended, key, body]);
}

export function closePayload(code: number, reason = ''): Buffer {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code);
  payload.write(reason, 2);
  return payload;
}

export interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

export interface UpgradeAnswer {
  status: number;
  headers: Record<string, string>;
}

export class ByteClient {
  #pending = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  ended = false;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#pending = Buffer.concat([this.#pending, chunk]);
      this.#wake?.();
    });
    socket.on('end', () => {
      this.ended = true;
      this.#wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake?.();
    });
    socket.on('error', () => {});
  }

  /**
   * Opens a connection and sends an upgrade request (`headers` replace or, as null, remove the
   * usual ones); resolves with the answer's status and headers, what follows it left for frames.
   */
  static async open(port: number, headers: Record<string, string | null> = {}, method = 'GET', extra?: Buffer, path = '/ws'): Promise<{ client: ByteClient; answer: UpgradeAnswer }> {
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    await withTimeout('the TCP connection', once(socket, 'connect'));
    const client = new ByteClient(socket);
    const all: Record<string, string | null> = {
      Host: '127.0.0.1',
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version': '13',
      ...headers,
    };
    const lines = Object.entries(all).flatMap(([name, value]) => (value === null ? [] : [`${name}: ${value}`]));
    const request = Buffer.from(`${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`);
    socket.write(extra === undefined ? request : Buffer.concat([request, extra]));
    return { client, answer: await client.#readHead() };
  }

  async #readHead(): Promise<UpgradeAnswer> {
    const end = await this.#until('the upgrade answer', () => {
      const at = this.#pending.indexOf('\r\n\r\n');
      return at < 0 ? undefined : at;
    });
    const [statusLine, ...lines] = this.#pending.subarray(0, end).toString('latin1').split('\r\n');
    this.#pending = this.#pending.subarray(end + 4);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { status: Number(statusLine!.split(' ')[1]), headers };
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next frame the server wrote. */
  nextFrame(what = 'a frame'): Promise<ServerFrame> {
    return this.#until(what, () => {
      const data = this.#pending;
      if (data.length < 2) return undefined;
      let length = data[1]! & 0x7f;
      let at = 2;
      if (length === 126) {
        if (data.length < 4) return undefined;
        length = data.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (data.length < 10) return undefined;
        length = Number(data.readBigUInt64BE(2));
        at = 10;
      }
      if (data.length < at + length) return undefined;
      this.#pending = data.subarray(at + length);
      return { fin: (data[0]! & 0x80) !== 0, opcode: data[0]! & 0x0f, payload: data.subarray(at, at + length) };
    });
  }

  /** The next frame that is not a ping (the server's keep-alive may come at any time). */
  async nextNonPing(what = 'a frame'): Promise<ServerFrame> {
    for (;;) {
      const got = await this.nextFrame(what);
      if (got.opcode !== OP.ping) return got;
    }
  }

  /** The server's close frame: its code (undefined when empty) and reason. */
  async nextClose(): Promise<{ code: number | undefined; reason: string }> {
    const got = await this.nextNonPing('a close frame');
    if (got.opcode !== OP.close) throw new Error(`expected a close frame, got opcode ${got.opcode}`);
    return got.payload.length === 0 ? { code: undefined, reason: '' } : { code: got.payload.readUInt16BE(0), reason: got.payload.subarray(2).toString() };
  }

  /** Waits for the server to end its side of the connection (FIN), or close it. */
  waitEnded(timeoutMs = 5000): Promise<true> {
    return this.#until('the server to end the connection', () => this.ended || this.closed || undefined, timeoutMs);
  }

  /** Waits for the connection to be gone (destroyed by the server, or ended both ways). */
  waitClosed(timeoutMs = 5000): Promise<true> {
    return this.#until('the connection to close', () => this.closed || undefined, timeoutMs);
  }

  /** Everything the server sent that was not read as a frame or head. */
  get unread(): Buffer {
    return this.#pending;
  }

  destroy(): void {
    this.socket.destroy();
  }

  async #until<T>(what: string, check: () => T | undefined, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      if (this.closed && what !== 'the connection to close') throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await withTimeout(what, new Promise<void>((resolve) => (this.#wake = resolve)), left).catch(() => {});
      this.#wake = undefined;
    }
  }
}
