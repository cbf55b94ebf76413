/**
 * @module
 * One long HTTP response that carries messages as they come: server-sent events, NDJSON
 * streaming, and their kin differ only in framing, so they share this. Each message's frame is
 * encoded once and shared by every stream; heartbeats keep proxies from timing streams out and
 * reveal dead peers through write errors.
 */
import type { ServerResponse } from 'node:http';
import { CLOSE_REASONS } from '../core/close-reasons.js';
import type { CloseReason } from '../core/close-reasons.js';
import { encodeBatch } from '../core/message.js';
import type { Delivery, Message, WireFormat } from '../core/message.js';
import type { Stream } from '../core/session.js';
import { clientAddress, FLOWING_HEADERS } from './http.js';
import type { LifecycleListener } from './http.js';

export interface PushFormat {
  readonly contentType: string;
  /** Sent once at the start (padding, `retry:`). */
  readonly preamble: string;
  /** One message's frame. */
  readonly frame: WireFormat;
  readonly heartbeat: string;
  /** The last words of a stream the server ends (token expired, shutdown, slow consumer), naming why. */
  readonly farewell?: (reason: CloseReason) => string;
}

/** A push format for plain subscriptions, which also says when messages were lost for good. */
export interface StreamFormat extends PushFormat {
  /**
   * The explicit signal that messages on `channel` (a name or pattern) are gone: those after
   * `since` at a resume, or some while the stream was live (no `since`).
   */
  gap(channel: string, since?: string): string;
}

export class PushStreams {
  readonly #streams = new Set<PushStream>();
  readonly #heartbeat: NodeJS.Timeout;

  /** `maxBufferedBytes`: a stream whose unsent bytes pass this is cut (slow consumer) instead of growing memory. */
  constructor(
    heartbeatMs: number,
    private readonly maxBufferedBytes: number,
    private readonly lifecycle: LifecycleListener = () => {},
  ) {
    this.#heartbeat = setInterval(() => {
      for (const stream of this.#streams) stream.write(stream.format.heartbeat);
    }, heartbeatMs);
    this.#heartbeat.unref();
  }

  get size(): number {
    return this.#streams.size;
  }

  /** Starts the response; `onClose` runs once when the client goes away or the stream ends. */
  open(res: ServerResponse, format: PushFormat, headers: Record<string, string | string[]>, onClose: (stream: PushStream) => void): PushStream {
    res.writeHead(200, { ...headers, 'Content-Type': format.contentType, ...FLOWING_HEADERS, 'Cache-Control': 'no-cache, no-transform' });
    // The client learns at once that its stream is open, even when nothing else is sent yet.
    res.flushHeaders();
    const stream = new PushStream(res, format, this.maxBufferedBytes, frameBytes(format, res.chunkedEncoding));
    this.#streams.add(stream);
    const fields = { address: clientAddress(res.req), path: res.req.url?.split('?')[0], type: format.contentType.split(';')[0] };
    this.lifecycle('stream opened', fields);
    res.once('close', () => {
      this.#streams.delete(stream);
      this.lifecycle('stream closed', { ...fields, ended: res.writableEnded ? 'by the server' : 'by the client' });
      onClose(stream);
    });
    stream.write(format.preamble);
    return stream;
  }

  closeAll(): void {
    clearInterval(this.#heartbeat);
    for (const stream of this.#streams) stream.end();
  }
}

export class PushStream implements Stream {
  constructor(
    private readonly res: ServerResponse,
    readonly format: PushFormat,
    private readonly maxBufferedBytes: number,
    /** The format's frames as the bytes this response puts on its socket, built once per message for every stream. */
    private readonly frames: WireFormat<Buffer>,
  ) {}

  push(deliveries: Delivery[]): boolean {
    const res = this.res;
    if (res.writableEnded || res.destroyed) return false;
    const socket = res.socket;
    if (socket === null) {
      // Not on its socket yet (a pipelined request waits for the one before it): the response queues it.
      this.write(deliveries.map((d) => d.encode(this.format.frame)).join(''));
      return true;
    }
    // One write per flush of bytes shared by every stream, straight to the socket: res.write would
    // convert the string again for each socket, frame the chunk in four writes and uncork on the next tick.
    socket.write(encodeBatch(deliveries, this.frames));
    this.#checkBuffered();
    return true;
  }

  sessionClosed(reason: CloseReason): void {
    if (CLOSE_REASONS[reason].farewell && this.format.farewell !== undefined) this.write(this.format.farewell(reason));
    this.end();
  }

  write(chunk: string): void {
    if (chunk.length === 0 || this.res.writableEnded || this.res.destroyed) return;
    this.res.write(chunk);
    this.#checkBuffered();
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }

  #checkBuffered(): void {
    // A client that stops reading would make Node buffer everything for it (writableLength counts the socket's buffer too).
    if (this.res.writableLength > this.maxBufferedBytes) this.res.destroy();
  }
}

const CRLF = Buffer.from('\r\n');
const frameBytesOf = new WeakMap<PushFormat, { readonly raw: WireFormat<Buffer>; readonly chunked: WireFormat<Buffer> }>();

/**
 * A format's frames as bytes: as they are, or as HTTP/1.1 chunks (size line, bytes, CRLF) for a
 * response in chunked encoding, which written as is keeps the response well formed around them.
 * One pair per format, so a Delivery builds each once, however many streams take it.
 */
function frameBytes(format: PushFormat, chunked: boolean): WireFormat<Buffer> {
  let pair = frameBytesOf.get(format);
  if (pair === undefined) {
    const raw = (message: Message) => Buffer.from(format.frame.encode(message));
    pair = {
      raw: { encode: raw },
      chunked: {
        encode: (message: Message) => {
          const bytes = raw(message);
          // A zero-length chunk would end the response.
          return bytes.length === 0 ? bytes : Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`, 'latin1'), bytes, CRLF]);
        },
      },
    };
    frameBytesOf.set(format, pair);
  }
  return chunked ? pair.chunked : pair.raw;
}

/** Some proxies and old browsers hold back the first 2 KiB of a response. */
export const SSE_PADDING = `:${' '.repeat(2048)}\n`;
