/**
 * @module
 * One long HTTP response that carries messages as they come: server-sent events, NDJSON
 * streaming, and their kin differ only in framing, so they share this. Each message's frame is
 * encoded once and shared by every stream; heartbeats keep proxies from timing streams out and
 * reveal dead peers through write errors.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { CLOSE_REASONS } from '../core/close-reasons.js';
import type { CloseReason } from '../core/close-reasons.js';
import { encodeBatch } from '../core/message.js';
import type { Delivery, Message, WireFormat } from '../core/message.js';
import type { Stream } from '../core/session.js';
import { clientAddress, FLOWING_HEADERS } from './http.js';
import type { LifecycleListener } from './http.js';
import { directBytesPending, writeToSocket } from './socket-write.js';
import { asChunk, endTaken, takeConnection } from './taken-connection.js';
import type { TakenConnection } from './taken-connection.js';

export interface PushFormat {
  readonly contentType: string;
  /** Sent once at the start (padding, `retry:`). */
  readonly preamble: string;
  /** One message's frame. */
  readonly frame: WireFormat;
  readonly heartbeat: string;
  /** The last words of a stream the server ends (token expired, shutdown, slow consumer), naming why. */
  readonly farewell?: (reason: CloseReason, note?: string) => string;
}

/** A push format for plain subscriptions, which also says when messages were lost for good. */
export interface StreamFormat extends PushFormat {
  /**
   * The explicit signal that messages on `channel` (a name or pattern) are gone: those after
   * `since` at a resume, or some while the stream was live (no `since`). `resumeFrom`, when given,
   * is where a client that reconnects should now resume from (SSE carries it as the event's id).
   */
  gap(channel: string, since?: string, resumeFrom?: string): string;
}

/** Told once when a stream's client goes away or the stream ends: an object, not a closure per stream. */
export interface StreamOwner {
  streamClosed(stream: PushStream): void;
}

/** What a stream logs when it closes (only while lifecycle logging is on). */
type LifecycleFields = { readonly address: string | undefined; readonly path: string | undefined; readonly type: string | undefined };

export class PushStreams {
  readonly #streams = new Set<PushStream>();
  readonly #heartbeat: NodeJS.Timeout;

  /** `maxBufferedBytes`: a stream whose unsent bytes pass this is cut (slow consumer) instead of growing memory. */
  constructor(
    heartbeatMs: number,
    readonly maxBufferedBytes: number,
    private readonly lifecycle?: LifecycleListener,
    /** Told when a stream is cut as a slow consumer (a metric). */
    readonly onSlowConsumer?: () => void,
  ) {
    this.#heartbeat = setInterval(() => {
      for (const stream of this.#streams) stream.heartbeat();
    }, heartbeatMs);
    this.#heartbeat.unref();
  }

  get size(): number {
    return this.#streams.size;
  }

  /**
   * Starts the response and takes its connection from Node's HTTP machinery (taken-connection.ts)
   * where it can; `owner` is told once when the client goes away or the stream ends.
   */
  open(res: ServerResponse, format: PushFormat, headers: Record<string, string | string[]>, owner: StreamOwner): PushStream {
    res.writeHead(200, { ...headers, 'Content-Type': format.contentType, ...FLOWING_HEADERS, 'Cache-Control': 'no-cache, no-transform' });
    // The client learns at once that its stream is open, even when nothing else is sent yet.
    res.flushHeaders();
    const req = res.req;
    const fields = this.lifecycle && { address: clientAddress(req), path: req.url?.split('?')[0], type: format.contentType.split(';')[0] };
    const stream = new PushStream(res, format, this, owner, fields);
    this.#streams.add(stream);
    if (fields) this.lifecycle!('stream opened', fields);
    stream.write(format.preamble);
    // Not now: a handler may run inside the HTTP parser's own call (as 'request' listeners do), and
    // the parser must not be released under it.
    process.nextTick(takeStreamConnection, stream);
    return stream;
  }

  /** `stream` closed: forgotten, logged, and its owner told. */
  closed(stream: PushStream, owner: StreamOwner, fields: LifecycleFields | undefined): void {
    this.#streams.delete(stream);
    if (fields) this.lifecycle!('stream closed', { ...fields, ended: stream.endedByServer ? 'by the server' : 'by the client' });
    owner.streamClosed(stream);
  }

  closeAll(): void {
    clearInterval(this.#heartbeat);
    for (const stream of this.#streams) stream.end();
  }

  /** Cuts every stream still open (shutdown's last step: a taken connection is no longer Node's to close). */
  destroyAll(): void {
    for (const stream of this.#streams) stream.destroy();
  }
}

/** The stream a response or a taken connection carries, for the one 'close' listener they all share. */
const streamOf = Symbol('push stream');

type Carrier = { [streamOf]?: PushStream };

function carrierClosed(this: Carrier): void {
  this[streamOf]?.closed();
}

function takeStreamConnection(stream: PushStream): void {
  stream.takeConnection();
}

export class PushStream implements Stream {
  #res: ServerResponse | undefined;
  #taken: TakenConnection | undefined;
  /** The format's frames as the bytes this stream puts on its socket, built once per message for every stream. */
  readonly #frames: WireFormat<Buffer>;
  readonly #heartbeat: Buffer;
  /** Undefined once closed: the owner is told once. */
  #owner: StreamOwner | undefined;
  readonly #fields: LifecycleFields | undefined;
  endedByServer = false;

  constructor(
    res: ServerResponse,
    readonly format: PushFormat,
    private readonly streams: PushStreams,
    owner: StreamOwner,
    fields: LifecycleFields | undefined,
  ) {
    this.#res = res;
    this.#frames = frameBytes(format, res.chunkedEncoding);
    this.#heartbeat = heartbeatBytes(format, res.chunkedEncoding);
    this.#owner = owner;
    this.#fields = fields;
    (res as ServerResponse & Carrier)[streamOf] = this;
    res.once('close', carrierClosed);
  }

  /** Takes the response's connection from Node's HTTP machinery (taken-connection.ts), where it can. */
  takeConnection(): void {
    const res = this.#res;
    if (res === undefined || res.writableEnded || res.destroyed) return;
    res.removeListener('close', carrierClosed);
    const taken = takeConnection(res.req, res);
    if (taken === undefined) {
      res.once('close', carrierClosed);
      return;
    }
    delete (res as ServerResponse & Carrier)[streamOf];
    this.#res = undefined;
    this.#taken = taken;
    (taken.socket as Socket & Carrier)[streamOf] = this;
    taken.socket.on('close', carrierClosed);
    // A client gone while the connection changed hands.
    if (taken.socket.destroyed) this.closed();
  }

  push(deliveries: Delivery[]): boolean {
    const socket = this.#socket();
    if (socket === undefined) return false;
    if (socket === null) {
      // Not on its socket yet (a pipelined request waits for the one before it): the response queues it.
      this.write(deliveries.map((d) => d.encode(this.format.frame)).join(''));
      return true;
    }
    // One write per flush of bytes shared by every stream, straight to the socket: res.write would
    // convert the string again for each socket, frame the chunk in four writes and uncork on the next tick.
    writeToSocket(socket, encodeBatch(deliveries, this.#frames));
    this.#checkBuffered(socket);
    return true;
  }

  sessionClosed(reason: CloseReason, note?: string): void {
    if (CLOSE_REASONS[reason].farewell && this.format.farewell !== undefined) this.write(this.format.farewell(reason, note));
    this.end();
  }

  write(chunk: string): void {
    if (chunk.length === 0) return;
    const taken = this.#taken;
    if (taken !== undefined) {
      if (!taken.socket.writable) return;
      const bytes = Buffer.from(chunk);
      taken.socket.write(taken.chunked ? asChunk(bytes) : bytes);
      this.#checkBuffered(taken.socket);
      return;
    }
    const res = this.#res!;
    if (res.writableEnded || res.destroyed) return;
    res.write(chunk);
    this.#checkBuffered(res.socket);
  }

  heartbeat(): void {
    const socket = this.#socket();
    if (socket === null) this.write(this.format.heartbeat);
    else if (socket !== undefined) {
      writeToSocket(socket, this.#heartbeat);
      this.#checkBuffered(socket);
    }
  }

  end(): void {
    if (this.#taken !== undefined) {
      if (!this.#taken.socket.writable) return;
      this.endedByServer = true;
      endTaken(this.#taken);
    } else if (!this.#res!.writableEnded) {
      this.endedByServer = true;
      this.#res!.end();
    }
  }

  destroy(): void {
    if (this.#taken !== undefined) this.#taken.socket.destroy();
    else this.#res!.destroy();
  }

  /** Runs once, when the connection (or the response) closes. */
  closed(): void {
    const owner = this.#owner;
    this.#owner = undefined;
    if (owner !== undefined) this.streams.closed(this, owner, this.#fields);
  }

  /** The socket to write to; null while the response waits for one; undefined once the stream is over. */
  #socket(): Socket | null | undefined {
    if (this.#taken !== undefined) return this.#taken.socket.writable ? this.#taken.socket : undefined;
    const res = this.#res!;
    if (res.writableEnded || res.destroyed) return undefined;
    return res.socket as Socket | null;
  }

  #checkBuffered(socket: Socket | null): void {
    // A client that stops reading would make Node buffer everything for it (the response's
    // writableLength counts its socket's buffer too), and what direct writes left with libuv.
    const buffered = (this.#taken !== undefined ? socket!.writableLength : this.#res!.writableLength) + (socket === null ? 0 : directBytesPending(socket));
    if (buffered <= this.streams.maxBufferedBytes) return;
    // Once per stream: nothing is written to it after this.
    this.streams.onSlowConsumer?.();
    this.destroy();
  }
}

const frameBytesOf = new WeakMap<PushFormat, { readonly raw: WireFormat<Buffer>; readonly chunked: WireFormat<Buffer> }>();
const heartbeatsOf = new WeakMap<PushFormat, { readonly raw: Buffer; readonly chunked: Buffer }>();

/**
 * A format's frames as bytes: as they are, or as HTTP/1.1 chunks (size line, bytes, CRLF) for a
 * response in chunked encoding, which written as is keeps the response well formed around them.
 * One pair per format, so a Delivery builds each once, however many streams take it.
 */
function frameBytes(format: PushFormat, chunked: boolean): WireFormat<Buffer> {
  let pair = frameBytesOf.get(format);
  if (pair === undefined) {
    const raw = (message: Message, json?: string) => Buffer.from(format.frame.encode(message, json));
    pair = { raw: { encode: raw }, chunked: { encode: (message: Message, json?: string) => asChunk(raw(message, json)) } };
    frameBytesOf.set(format, pair);
  }
  return chunked ? pair.chunked : pair.raw;
}

/** A format's heartbeat as bytes, built once per format. */
function heartbeatBytes(format: PushFormat, chunked: boolean): Buffer {
  let pair = heartbeatsOf.get(format);
  if (pair === undefined) {
    const raw = Buffer.from(format.heartbeat);
    pair = { raw, chunked: asChunk(raw) };
    heartbeatsOf.set(format, pair);
  }
  return chunked ? pair.chunked : pair.raw;
}

/** Some proxies and old browsers hold back the first 2 KiB of a response. */
export const SSE_PADDING = `:${' '.repeat(2048)}\n`;
