/**
 * @module
 * `GET /sub/{channel}`: a plain-HTTP subscription, negotiated per request —
 * `Accept: text/event-stream` → server-sent events (transports/sse.ts), resumable from
 * `Last-Event-ID` (or `?lastEventId=`); `Upgrade: websocket` → a frame per message
 * (transports/message-socket.ts); `?transport=stream` → NDJSON (transports/ndjson.ts);
 * `?transport=multipart` (transports/multipart.ts); `?transport=iframe` (transports/iframe.ts);
 * none → a long-poll (subscribe-poll.ts). The streaming kinds resume from `?since=`. A resume
 * replays what history still holds after that id, then goes live without a duplicate; when history
 * no longer reaches back that far, a `gap` signal comes first.
 * Channel patterns (`/sub/stocks/**`) subscribe to many channels; a stream on one cannot resume
 * (history is kept per channel), so asking it to gives the gap signal (a long-poll's cursor can:
 * subscribe-poll.ts). A herald_token cookie counts only on requests no other site can make
 * (transports/http.ts readToken); callback names pass the one check in callback-polling.ts.
 * A pattern some of whose channels the bearer may not read is accepted with a guard (the gate's
 * verdict): those channels never arrive.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Principal } from '../core/access.js';
import type { ParsedChannel } from '../core/channel.js';
import type { Engine } from '../core/engine.js';
import type { Hub } from '../core/hub.js';
import { isMessageId, randomId } from '../core/ids.js';
import { Delivery } from '../core/message.js';
import type { Message } from '../core/message.js';
import type { CloseReason, Session, Stream } from '../core/session.js';
import type { SessionStore } from '../core/session-store.js';
import type { SubscriptionGuard } from '../core/subscription-guard.js';
import { jsonpCallback } from '../transports/callback-polling.js';
import type { CallbackName } from '../transports/callback-polling.js';
import { clientAddress, HttpError, refuseUpgrade, sendError, sendRefusal } from '../transports/http.js';
import type { LifecycleListener } from '../transports/http.js';
import { IFRAME_CALLBACK, iframeFormat } from '../transports/iframe.js';
import { MessageSocket, messageFrames } from '../transports/message-socket.js';
import { multipartFormat } from '../transports/multipart.js';
import { ndjsonFormat } from '../transports/ndjson.js';
import { PushStreams } from '../transports/push-stream.js';
import type { PushStream, StreamFormat, StreamOwner } from '../transports/push-stream.js';
import { sseFormat } from '../transports/sse.js';
import type { WebSocketTransport } from '../transports/websocket.js';
import type { PeerOwner } from '../transports/ws-connection.js';
import { CLOSE } from '../transports/ws-frames.js';
import { channelFromPath, REST_JSON } from './rest-channel.js';
import type { RestGate } from './rest-gate.js';
import type { SubscribePoll } from './subscribe-poll.js';

export interface RestSubscribeOptions {
  readonly heartbeatMs: number;
  readonly maxBufferedBytes: number;
  /** The SSE `retry:` advice: how soon a browser reconnects. */
  readonly retryMs: number;
  readonly lifecycle?: LifecycleListener;
  /** Told when a stream is cut as a slow consumer (a metric). */
  readonly onSlowConsumer?: () => void;
}

const TOO_MANY_SESSIONS = 'too many subscriptions open from this address: close some, or raise --max-sessions-per-ip';

type StreamKind = 'stream' | 'multipart';

export class RestSubscribe {
  readonly #streams: PushStreams;
  /** A message as one WebSocket text frame, built once and shared. */
  readonly #frames = messageFrames(REST_JSON);
  readonly #sse: StreamFormat;
  readonly #modes: Record<StreamKind, StreamFormat>;

  constructor(
    private readonly sessions: SessionStore,
    private readonly hub: Hub,
    private readonly engine: Engine,
    private readonly poll: SubscribePoll,
    private readonly gate: RestGate,
    options: RestSubscribeOptions,
  ) {
    this.#streams = new PushStreams(options.heartbeatMs, options.maxBufferedBytes, options.lifecycle, options.onSlowConsumer);
    this.#sse = sseFormat(REST_JSON, options.retryMs);
    this.#modes = { stream: ndjsonFormat(REST_JSON), multipart: multipartFormat(REST_JSON, randomId().slice(0, 24)) };
  }

  /** `path`: what follows `/sub/`. */
  async serve(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, headers: Record<string, string>): Promise<void> {
    if (req.method !== 'GET') return sendError(res, 405, `method ${req.method} not allowed: use GET`, { ...headers, Allow: 'GET, OPTIONS' });
    const named = channelFromPath(path, true);
    if (!('channel' in named)) return sendError(res, named.status, named.error, headers);
    const sse = (req.headers.accept ?? '').includes('text/event-stream');
    const transport = query.get('transport');
    if (!sse && transport !== null && transport !== 'iframe' && !Object.hasOwn(this.#modes, transport)) {
      return sendError(res, 400, `unknown transport ${JSON.stringify(transport.slice(0, 40))}: use stream, multipart, iframe, or none for a long-poll`, headers);
    }
    const since = sse ? (headerValue(req.headers['last-event-id']) ?? query.get('lastEventId') ?? undefined) : (query.get('since') ?? undefined);
    if (since !== undefined && !isMessageId(since)) return sendError(res, 400, 'the id to resume from must be a message id', headers);
    // A bad callback name is refused before anything else is looked at.
    let mode: StreamFormat | undefined;
    let callback: CallbackName | undefined;
    try {
      if (sse) mode = this.#sse;
      else if (transport === 'iframe') mode = iframeFormat(REST_JSON, jsonpCallback(query, 'callback', IFRAME_CALLBACK));
      else if (transport !== null) mode = this.#modes[transport as StreamKind];
      else if (query.has('callback')) callback = jsonpCallback(query, 'callback');
    } catch (error) {
      if (error instanceof HttpError) return sendError(res, error.status, error.message, headers);
      throw error;
    }
    const channel = named.channel;
    const verdict = await this.gate(req, query, 'subscribe', channel.name);
    if (!verdict.ok) return sendRefusal(res, verdict, headers);
    if (this.sessions.atAddressLimit(clientAddress(req))) return sendError(res, 429, TOO_MANY_SESSIONS, { ...headers, 'Retry-After': '10' });
    if (mode === undefined) return this.poll.serve(req, res, { channel, since, callback, principal: verdict.principal, guard: verdict.guard }, query, headers);

    const session = this.sessions.create(clientAddress(req));
    session.transport = `rest-${sse ? 'sse' : String(transport)}`;
    // The stream ends when the token it was opened with expires; the client comes back with a new one.
    session.principal = verdict.principal;
    const { replay, gap, resumeFrom } = await this.#resume(session, channel, verdict.guard, since);
    if (res.destroyed) {
      this.sessions.close(session, 'client');
      return;
    }
    const rest = new RestStream(this.sessions, session, replay[replay.length - 1]?.id);
    const stream = this.#streams.open(res, mode, headers, rest);
    rest.inner = stream;
    if (gap) rest.signalGap(channel.name, since, replay.length === 0 ? resumeFrom : undefined);
    if (replay.length > 0) stream.push(replay.map((message) => new Delivery(message)));
    session.attachStream(rest);
  }

  /**
   * `GET /sub/{channel}` with `Upgrade: websocket`: one JSON message per text frame, resumable from
   * `?since=` (or `?lastEventId=`); what the client sends is ignored.
   */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, path: string, query: URLSearchParams, webSocket: WebSocketTransport): Promise<void> {
    const named = channelFromPath(path, true);
    const since = query.get('since') ?? query.get('lastEventId') ?? undefined;
    if (!('channel' in named)) return refuseUpgrade(socket, named.status, named.error);
    if (since !== undefined && !isMessageId(since)) return refuseUpgrade(socket, 400, 'the id to resume from must be a message id');
    const channel = named.channel;
    const verdict = await this.gate(req, query, 'subscribe', channel.name);
    if (!verdict.ok) return refuseUpgrade(socket, verdict.status, verdict.error);
    if (this.sessions.atAddressLimit(clientAddress(req))) return refuseUpgrade(socket, 429, TOO_MANY_SESSIONS);
    if (socket.destroyed) return;
    const address = clientAddress(req);
    webSocket.accept(req, socket, head, (raw, shared) => this.#openSocket(new MessageSocket(raw, shared, this.#frames), address, verdict.principal, channel, verdict.guard, since));
  }

  /** Apart from upgrade(), so that what the open socket keeps (its listeners, its stream) holds nothing of the request. */
  #openSocket(socket: MessageSocket, address: string | undefined, principal: Principal | undefined, channel: ParsedChannel, guard: SubscriptionGuard | undefined, since: string | undefined): MessageSocket {
    const session = this.sessions.create(address);
    session.principal = principal;
    session.transport = 'rest-websocket';
    const rest = new RestStream(this.sessions, session, undefined);
    // Told when the socket closes: the stream object, not a closure per socket.
    socket.owner = rest;
    if (since === undefined) {
      // Nothing to replay: the socket carries whatever arrives once the subscription is live (the
      // index has it when subscribe returns; the engine may take longer, as it does for everyone).
      rest.inner = socket;
      session.attachStream(rest);
      this.hub.subscribe(session, channel.name, guard).catch(() => socket.close(CLOSE.tryAgainLater, 'could not subscribe: try again'));
      return socket;
    }
    this.#resume(session, channel, guard, since).then(
      ({ replay, gap }) => {
        if (!socket.isOpen) return;
        rest.inner = socket;
        if (gap) socket.signalGap(channel.name, since);
        for (const message of replay) socket.sendFrame(new Delivery(message).encode(this.#frames));
        rest.lastSent = replay[replay.length - 1]?.id;
        session.attachStream(rest);
      },
      () => socket.close(CLOSE.tryAgainLater, 'could not subscribe: try again'),
    );
    return socket;
  }

  /**
   * Subscribes, then reads what history holds after `since`: a message published in between is
   * queued, not missed. `resumeFrom`: a resume point taken before the subscription went live, so
   * every message after it is replayed or queued — where a client told of a gap resumes next.
   */
  async #resume(session: Session, channel: ParsedChannel, guard: SubscriptionGuard | undefined, since: string | undefined): Promise<{ replay: readonly Message[]; gap: boolean; resumeFrom?: string }> {
    const exact = channel.wildcard === 'none';
    const resumeFrom = since !== undefined && exact ? await this.engine.position(channel.name) : undefined;
    await this.hub.subscribe(session, channel.name, guard);
    if (since === undefined) return { replay: [], gap: false };
    if (!exact) return { replay: [], gap: true };
    const page = await this.engine.history(channel.name, { since });
    return { replay: page.messages, gap: page.gap, resumeFrom };
  }

  /** Open HTTP streams (SSE, NDJSON, multipart, iframe); WebSockets are counted by their transport. */
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

/**
 * A plain subscription's stream: tells of gaps the engine reports in the transport's own form
 * (SSE `event: gap`, a `{"gap":true,…}` line, part, script or WebSocket frame), and drops what a
 * replay already sent (`lastSent`): messages queued while history was read come again. It is also
 * what its connection tells when it closes, so that an idle subscription holds no closure.
 */
class RestStream implements Stream, StreamOwner, PeerOwner {
  /** The connection's stream, set once it is open (before the session is given this). */
  inner: PushStream | MessageSocket | undefined;

  constructor(
    private readonly sessions: SessionStore,
    private readonly session: Session,
    public lastSent: string | undefined,
  ) {}

  push(deliveries: Delivery[]): boolean {
    const lastSent = this.lastSent;
    if (lastSent === undefined) return this.inner!.push(deliveries);
    const fresh = deliveries.filter((delivery) => delivery.message.id > lastSent || delivery.message.event !== undefined);
    return fresh.length === 0 ? true : this.inner!.push(fresh);
  }

  gap(channel: string): void {
    this.signalGap(channel);
  }

  /** Tells the client that messages on `channel` after `since` (all recent ones, without it) are gone. */
  signalGap(channel: string, since?: string, resumeFrom?: string): void {
    const inner = this.inner!;
    if (inner instanceof MessageSocket) inner.signalGap(channel, since);
    else inner.write((inner.format as StreamFormat).gap(channel, since, resumeFrom));
  }

  sessionClosed(reason: CloseReason, note?: string): void {
    this.inner?.sessionClosed(reason, note);
  }

  streamClosed(): void {
    this.sessions.close(this.session, 'client');
  }

  peerClosed(): void {
    this.sessions.close(this.session, 'client');
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
