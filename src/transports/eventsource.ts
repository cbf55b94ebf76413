/**
 * @module
 * The `eventsource` transport as Faye's client uses it: the client opens an EventSource on
 * `<endpoint>/<clientId>` and receives deliveries down it as `data: [...]` events, while it posts
 * its other messages (connects included) over plain HTTP.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Message, WireFormat } from '../core/message.js';
import type { RequestContext, SessionFinder } from '../core/protocol.js';
import { clientAddress, readCookie, sendError } from './http.js';
import type { LifecycleListener } from './http.js';
import { BROWSER_COOKIE } from './long-polling.js';
import type { PushFormat } from './push-stream.js';
import { PushStream, PushStreams, SSE_PADDING } from './push-stream.js';

export interface EventSourceOptions {
  readonly heartbeatMs: number;
  readonly maxBufferedBytes: number;
  /** Advised reconnection delay (the SSE `retry:` field). */
  readonly retryMs: number;
  /** Encode one delivery as the JSON of one message: plain, or with its id for sessions that resume. */
  readonly messageFormats: { readonly plain: WireFormat; readonly withIds: WireFormat };
  readonly lifecycle?: LifecycleListener;
  /** Told when a stream is cut as a slow consumer (a metric). */
  readonly onSlowConsumer?: () => void;
}

export class EventSourceTransport {
  static readonly connectionType = 'eventsource';

  readonly #streams: PushStreams;
  readonly #formats: { readonly plain: PushFormat; readonly withIds: PushFormat };

  constructor(
    private readonly findSession: SessionFinder,
    options: EventSourceOptions,
  ) {
    this.#streams = new PushStreams(options.heartbeatMs, options.maxBufferedBytes, options.lifecycle, options.onSlowConsumer);
    // Herald's client (the sessions that take ids) waits for a first event, an empty batch, before
    // it relies on the stream: behind a proxy that buffers streamed bodies it never comes, and the
    // client moves on to a transport whose responses end. Faye's client gets the plain preamble.
    const formatOf = (messageFormat: WireFormat, hello: string): PushFormat => ({
      contentType: 'text/event-stream; charset=utf-8',
      preamble: `${SSE_PADDING}retry: ${options.retryMs}\n\n${hello}`,
      frame: { encode: (message: Message, json?: string) => `data: [${messageFormat.encode(message, json)}]\n\n` },
      heartbeat: ':\n\n',
    });
    this.#formats = { plain: formatOf(options.messageFormats.plain, ''), withIds: formatOf(options.messageFormats.withIds, 'data: []\n\n') };
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
      remoteAddress: clientAddress(req),
      headers: req.headers,
    };
    const session = clientId === '' ? undefined : this.findSession(clientId, context);
    if (session === undefined) {
      sendError(res, 400, 'unknown clientId: handshake first, then open the stream at <endpoint>/<clientId>', headers);
      return;
    }
    if (session.connectOnly) {
      // Acknowledged delivery numbers its batches on connect replies: a stream would never carry anything.
      sendError(res, 400, 'this session takes its messages on connect replies only (acknowledged delivery): it cannot open an event stream', headers);
      return;
    }
    const format = session.messageIds ? this.#formats.withIds : this.#formats.plain;
    const previous = session.stream;
    const stream = this.#streams.open(res, format, headers, { streamClosed: (closed) => session.detachStream(closed) });
    session.attachStream(stream);
    // A stream that carries nothing must not stay open, nor one a newer stream of the session
    // replaced (the client reconnected its EventSource; the old connection may be half dead).
    if (session.stream !== stream) stream.end();
    else if (previous instanceof PushStream) previous.end();
  }

  get openStreams(): number {
    return this.#streams.size;
  }

  closeAll(): void {
    this.#streams.closeAll();
  }

  /** Cuts the streams still open after closeAll (their connections are no longer Node's to close). */
  destroyAll(): void {
    this.#streams.destroyAll();
  }
}
