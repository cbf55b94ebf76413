/**
 * @module
 * The `eventsource` transport as Faye's client uses it: the client opens an EventSource on
 * `<endpoint>/<clientId>` and receives deliveries down it as `data: [...]` events, while it posts
 * its other messages (connects included) over plain HTTP. Heartbeats are SSE comments, which
 * keep proxies from timing the stream out and reveal dead peers through write errors.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Delivery, Message, WireFormat } from '../core/message.js';
import type { RequestContext, SessionFinder } from '../core/protocol.js';
import type { CloseReason, Stream } from '../core/session.js';
import { readCookie, sendError } from './http.js';
import { BROWSER_COOKIE } from './long-polling.js';

export interface EventSourceOptions {
  readonly heartbeatMs: number;
  /** Advised reconnection delay (the SSE `retry:` field). */
  readonly retryMs: number;
  readonly messageFormat: WireFormat;
}

export class EventSourceTransport {
  static readonly connectionType = 'eventsource';

  readonly #streams = new Set<SseStream>();
  readonly #heartbeat: NodeJS.Timeout;
  /** One event per delivery, encoded once and shared by every stream. */
  readonly #eventFormat: WireFormat;

  constructor(
    private readonly findSession: SessionFinder,
    private readonly options: EventSourceOptions,
  ) {
    const messageFormat = options.messageFormat;
    this.#eventFormat = { encode: (message: Message) => `data: [${messageFormat.encode(message)}]\n\n` };
    this.#heartbeat = setInterval(() => {
      for (const stream of this.#streams) stream.write(':\n\n');
    }, options.heartbeatMs);
    this.#heartbeat.unref();
  }

  /** True when this GET asks for an event stream. */
  static wants(req: IncomingMessage): boolean {
    return req.method === 'GET' && (req.headers.accept ?? '').includes('text/event-stream');
  }

  /** Serves `GET <endpoint>/<clientId>`. */
  serve(req: IncomingMessage, res: ServerResponse, clientId: string, headers: Record<string, string | string[]>): void {
    const context: RequestContext = {
      connectionType: EventSourceTransport.connectionType,
      browserId: readCookie(req, BROWSER_COOKIE),
      canSetCookie: false,
      remoteAddress: req.socket.remoteAddress,
      headers: req.headers,
    };
    const session = clientId === '' ? undefined : this.findSession(clientId, context);
    if (session === undefined) {
      sendError(res, 400, 'unknown clientId: handshake first, then open the stream at <endpoint>/<clientId>', headers);
      return;
    }
    res.writeHead(200, {
      ...headers,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    // Padding first: some proxies and old browsers buffer the first 2 KiB of a response.
    res.write(`:${' '.repeat(2048)}\nretry: ${this.options.retryMs}\n\n`);
    const stream = new SseStream(res, this.#eventFormat, this.options.messageFormat);
    this.#streams.add(stream);
    session.attachStream(stream);
    res.once('close', () => {
      this.#streams.delete(stream);
      session.detachStream(stream);
    });
  }

  closeAll(): void {
    clearInterval(this.#heartbeat);
    for (const stream of this.#streams) stream.end();
  }
}

class SseStream implements Stream {
  constructor(
    private readonly res: ServerResponse,
    private readonly eventFormat: WireFormat,
    private readonly messageFormat: WireFormat,
  ) {}

  push(deliveries: Delivery[]): boolean {
    if (this.res.writableEnded || this.res.destroyed) return false;
    if (deliveries.length === 1) {
      this.write(deliveries[0]!.encode(this.eventFormat));
      return true;
    }
    this.write(`data: [${deliveries.map((delivery) => delivery.encode(this.messageFormat)).join(',')}]\n\n`);
    return true;
  }

  sessionClosed(_reason: CloseReason): void {
    this.end();
  }

  write(chunk: string): void {
    if (!this.res.writableEnded && !this.res.destroyed) this.res.write(chunk);
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }
}
