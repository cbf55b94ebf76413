/**
 * @module
 * `GET /sub/{channel}`: a plain-HTTP subscription, negotiated per request —
 * `Accept: text/event-stream` → server-sent events with `id:` lines, resumable from `Last-Event-ID`
 * (or `?lastEventId=`); `?transport=stream` → NDJSON, one message per line, resumable from
 * `?since=`. A resume replays what history still holds after that id, then goes live without a
 * duplicate; when history no longer reaches back that far, a `gap` signal comes first.
 * Channel patterns (`/sub/stocks/**`) subscribe to many channels; they cannot resume (history is
 * kept per channel), so asking them to gives the gap signal.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from '../core/engine.js';
import type { Hub } from '../core/hub.js';
import { Delivery } from '../core/message.js';
import type { Message } from '../core/message.js';
import type { Duplex } from 'node:stream';
import type { ParsedChannel } from '../core/channel.js';
import type { WireFormat } from '../core/message.js';
import type { CloseReason, Session, Stream } from '../core/session.js';
import type { WebSocketTransport, WsPeer } from '../transports/websocket.js';
import { CLOSE, textFrame } from '../transports/websocket.js';
import type { SessionStore } from '../core/session-store.js';
import { randomId } from '../core/ids.js';
import { jsonpCallback } from '../transports/callback-polling.js';
import { HttpError, sendError } from '../transports/http.js';
import type { PushFormat } from '../transports/push-stream.js';
import { PushStreams, SSE_PADDING } from '../transports/push-stream.js';
import { channelFromPath, REST_JSON } from './rest-channel.js';
import type { SubscribePoll } from './subscribe-poll.js';

export interface RestSubscribeOptions {
  readonly heartbeatMs: number;
  /** The SSE `retry:` advice: how soon a browser reconnects. */
  readonly retryMs: number;
}

interface Mode {
  readonly format: PushFormat;
  /** The explicit signal that messages after `since` are gone. */
  gap(channel: string, since: string): string;
}

const MESSAGE_ID = /^[0-9a-z]{1,64}$/;

type StreamKind = 'stream' | 'multipart' | 'iframe';

export class RestSubscribe {
  readonly #streams: PushStreams;
  readonly #sse: Mode;
  readonly #modes: Record<StreamKind, Mode>;

  constructor(
    private readonly sessions: SessionStore,
    private readonly hub: Hub,
    private readonly engine: Engine,
    private readonly poll: SubscribePoll,
    options: RestSubscribeOptions,
  ) {
    this.#streams = new PushStreams(options.heartbeatMs);
    this.#sse = {
      format: {
        contentType: 'text/event-stream; charset=utf-8',
        preamble: `${SSE_PADDING}retry: ${options.retryMs}\n\n`,
        frame: { encode: (message: Message) => `id: ${message.id}\ndata: ${REST_JSON.encode(message)}\n\n` },
        heartbeat: ':\n\n',
      },
      gap: (channel, since) => `event: gap\ndata: ${JSON.stringify({ channel, lastEventId: since })}\n\n`,
    };
    const ndjson: Mode = {
      format: {
        contentType: 'application/x-ndjson; charset=utf-8',
        preamble: '',
        frame: { encode: (message: Message) => `${REST_JSON.encode(message)}\n` },
        heartbeat: '\n',
      },
      gap: (channel, since) => `${JSON.stringify({ gap: true, channel, since })}\n`,
    };
    this.#modes = { stream: ndjson, multipart: multipartMode(randomId().slice(0, 24)), iframe: iframeMode('herald') };
  }

  /** `path`: what follows `/sub/`. */
  async serve(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, headers: Record<string, string>): Promise<void> {
    if (req.method !== 'GET') return sendError(res, 405, `method ${req.method} not allowed: use GET`, { ...headers, Allow: 'GET, OPTIONS' });
    const named = channelFromPath(path, true);
    if (!('channel' in named)) return sendError(res, named.status, named.error, headers);
    const sse = (req.headers.accept ?? '').includes('text/event-stream');
    const transport = query.get('transport');
    if (!sse && transport !== null && !Object.hasOwn(this.#modes, transport)) {
      return sendError(res, 400, `unknown transport ${JSON.stringify(transport.slice(0, 40))}: use stream, multipart, iframe, or none for a long-poll`, headers);
    }
    const since = sse ? (headerValue(req.headers['last-event-id']) ?? query.get('lastEventId') ?? undefined) : (query.get('since') ?? undefined);
    if (since !== undefined && !MESSAGE_ID.test(since)) return sendError(res, 400, 'the id to resume from must be a message id', headers);
    const channel = named.channel;
    if (!sse && transport === null) return this.poll.serve(req, res, channel, since, query, headers);
    let mode = sse ? this.#sse : this.#modes[transport as StreamKind];
    if (transport === 'iframe' && (query.get('callback') ?? '') !== '') {
      try {
        mode = iframeMode(jsonpCallback(query, 'callback'));
      } catch (error) {
        if (error instanceof HttpError) return sendError(res, error.status, error.message, headers);
        throw error;
      }
    }

    const session = this.sessions.create();
    const { replay, gap } = await this.#resume(session, channel, since);
    if (res.destroyed) {
      this.sessions.close(session, 'client');
      return;
    }
    const stream = this.#streams.open(res, mode.format, headers, () => this.sessions.close(session, 'client'));
    if (gap) stream.write(mode.gap(channel.name, since!));
    if (replay.length > 0) stream.push(replay.map((message) => new Delivery(message)));
    const lastReplayed = replay[replay.length - 1]?.id;
    session.attachStream(lastReplayed === undefined ? stream : new AfterId(stream, lastReplayed));
  }

  /**
   * `GET /sub/{channel}` with `Upgrade: websocket`: one JSON message per text frame, resumable from
   * `?since=` (or `?lastEventId=`); what the client sends is ignored.
   */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, path: string, query: URLSearchParams, webSocket: WebSocketTransport): void {
    const named = channelFromPath(path, true);
    const since = query.get('since') ?? query.get('lastEventId') ?? undefined;
    const refusal = !('channel' in named) ? named : since !== undefined && !MESSAGE_ID.test(since) ? { status: 400, error: 'the id to resume from must be a message id' } : undefined;
    if (refusal !== undefined || !('channel' in named)) {
      const body = JSON.stringify({ error: refusal?.error });
      socket.end(`HTTP/1.1 ${refusal?.status} ${refusal?.status === 403 ? 'Forbidden' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    const channel = named.channel;
    webSocket.accept(req, socket, head, (peer) => {
      const session = this.sessions.create();
      peer.ws.once('close', () => this.sessions.close(session, 'client'));
      this.#resume(session, channel, since).then(
        ({ replay, gap }) => {
          if (!peer.isOpen) return;
          if (gap) peer.sendText(JSON.stringify({ gap: true, channel: channel.name, since }));
          for (const message of replay) peer.sendFrame(new Delivery(message).encode(REST_WS_FRAME));
          const stream = new RestSocket(peer);
          const lastReplayed = replay[replay.length - 1]?.id;
          session.attachStream(lastReplayed === undefined ? stream : new AfterId(stream, lastReplayed));
        },
        () => peer.close(CLOSE.tryAgainLater, 'could not subscribe: try again'),
      );
    });
  }

  /** Subscribes, then reads what history holds after `since`: a message published in between is queued, not missed. */
  async #resume(session: Session, channel: ParsedChannel, since: string | undefined): Promise<{ replay: readonly Message[]; gap: boolean }> {
    await this.hub.subscribe(session, channel.name);
    if (since === undefined) return { replay: [], gap: false };
    if (channel.wildcard !== 'none') return { replay: [], gap: true };
    const page = await this.engine.history(channel.name, { since });
    return { replay: page.messages, gap: page.gap };
  }

  closeAll(): void {
    this.#streams.closeAll();
  }
}

/** A message as one WebSocket text frame, built once and shared. */
const REST_WS_FRAME: WireFormat<Buffer> = { encode: (message: Message) => textFrame(Buffer.from(REST_JSON.encode(message))) };

class RestSocket implements Stream {
  constructor(private readonly peer: WsPeer) {}

  push(deliveries: Delivery[]): boolean {
    if (!this.peer.isOpen) return false;
    for (const delivery of deliveries) this.peer.sendFrame(delivery.encode(REST_WS_FRAME));
    return true;
  }

  sessionClosed(reason: CloseReason): void {
    if (reason === 'shutdown') this.peer.close(CLOSE.goingAway, 'server shutting down');
    else if (reason === 'queue_full') this.peer.close(CLOSE.tryAgainLater, 'slow consumer: message queue full');
  }
}

/** Drops what the replay already sent: messages queued while history was read come again. */
class AfterId implements Stream {
  constructor(
    private readonly inner: Stream,
    private readonly lastSent: string,
  ) {}

  push(deliveries: Delivery[]): boolean {
    const fresh = deliveries.filter((delivery) => delivery.message.id > this.lastSent);
    return fresh.length === 0 ? true : this.inner.push(fresh);
  }

  sessionClosed(reason: CloseReason): void {
    this.inner.sessionClosed(reason);
  }
}

/**
 * `multipart/mixed`, a part per message. The boundary is fixed per server so a message's part is
 * encoded once; a payload cannot forge it, because every `--boundary` inside the JSON is written
 * with its first `-` as `\u002d`, which JSON reads back as the same text. Heartbeats are empty parts.
 */
function multipartMode(boundary: string): Mode {
  const delimiter = `--herald-${boundary}`;
  const part = (json: string) => `${delimiter}\r\nContent-Type: application/json\r\n\r\n${json.replaceAll(delimiter, `\\u002d${delimiter.slice(1)}`)}\r\n`;
  return {
    format: {
      contentType: `multipart/mixed; boundary=${delimiter.slice(2)}`,
      preamble: '',
      frame: { encode: (message: Message) => part(REST_JSON.encode(message)) },
      heartbeat: `${delimiter}\r\nContent-Type: text/plain\r\n\r\n\r\n`,
    },
    gap: (channel, since) => part(JSON.stringify({ gap: true, channel, since })),
  };
}

/**
 * A forever iframe: an HTML page that never ends, a `<script>` per message calling
 * `parent.<callback>(message)`. Padding first, since old browsers render nothing before 1 KiB or so.
 * The JSON is made safe inside a script element: `<` is escaped, so no `</script>` can end it early.
 */
function iframeMode(callback: string): Mode {
  const script = (json: string) => `<script>h(${json.replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')})</script>\n`;
  return {
    format: {
      contentType: 'text/html; charset=utf-8',
      preamble: `<!doctype html><html><head><meta charset="utf-8"><script>var h=function(m){parent.${callback}(m)}</script></head><body>\n<!--${' '.repeat(2048)}-->\n`,
      frame: { encode: (message: Message) => script(REST_JSON.encode(message)) },
      heartbeat: '<!-- -->\n',
    },
    gap: (channel, since) => script(JSON.stringify({ gap: true, channel, since })),
  };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
