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
import type { CloseReason, Stream } from '../core/session.js';
import type { SessionStore } from '../core/session-store.js';
import { sendError } from '../transports/http.js';
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

export class RestSubscribe {
  readonly #streams: PushStreams;
  readonly #sse: Mode;
  readonly #ndjson: Mode;

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
    this.#ndjson = {
      format: {
        contentType: 'application/x-ndjson; charset=utf-8',
        preamble: '',
        frame: { encode: (message: Message) => `${REST_JSON.encode(message)}\n` },
        heartbeat: '\n',
      },
      gap: (channel, since) => `${JSON.stringify({ gap: true, channel, since })}\n`,
    };
  }

  /** `path`: what follows `/sub/`. */
  async serve(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, headers: Record<string, string>): Promise<void> {
    if (req.method !== 'GET') return sendError(res, 405, `method ${req.method} not allowed: use GET`, { ...headers, Allow: 'GET, OPTIONS' });
    const named = channelFromPath(path, true);
    if (!('channel' in named)) return sendError(res, named.status, named.error, headers);
    const sse = (req.headers.accept ?? '').includes('text/event-stream');
    const transport = query.get('transport');
    if (!sse && transport !== null && transport !== 'stream') {
      return sendError(res, 400, `unknown transport ${JSON.stringify(transport.slice(0, 40))}: use stream, or none for a long-poll`, headers);
    }
    const since = sse ? (headerValue(req.headers['last-event-id']) ?? query.get('lastEventId') ?? undefined) : (query.get('since') ?? undefined);
    if (since !== undefined && !MESSAGE_ID.test(since)) return sendError(res, 400, 'the id to resume from must be a message id', headers);
    const channel = named.channel;
    if (!sse && transport === null) return this.poll.serve(req, res, channel, since, query, headers);
    const mode = sse ? this.#sse : this.#ndjson;

    const session = this.sessions.create();
    // Subscribe before reading history: a message published in between is then queued, not missed.
    await this.hub.subscribe(session, channel.name);
    let replay: readonly Message[] = [];
    let gap = false;
    if (since !== undefined) {
      if (channel.wildcard === 'none') ({ messages: replay, gap } = await this.engine.history(channel.name, { since }));
      else gap = true;
    }
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

  closeAll(): void {
    this.#streams.closeAll();
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

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
