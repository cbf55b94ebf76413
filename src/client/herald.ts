/**
 * @module
 * The Herald client: subscribe to channels, publish, and stay connected through whatever the
 * network allows. It speaks Bayeux to a Herald server (`/bayeux`), asks for message ids, and
 * drops any message it has already seen, so resumes and transport switches never show a message
 * twice.
 *
 * @example
 * const herald = new Herald('/bayeux');
 * herald.on('state', (state, { transport }) => console.log(state, transport));
 * const subscription = herald.subscribe('/chat/lobby', (data) => console.log(data));
 * await herald.publish('/chat/lobby', { text: 'hi' });
 * subscription.unsubscribe();
 */
import { parseChannel } from '../core/channel.js';
import type { PageActivity } from './activity.js';
import type { HeraldClientOptions } from './client-options.js';
import { createUpstream } from './client-options.js';
import type { TokenSource } from './connection.js';
import type { ClientEvents, Listener, MessageHandler } from './dispatch.js';
import { Dispatch } from './dispatch.js';
import type { ConnectionType } from './protocol.js';
import type { PresenceListing, SubscriptionEvents } from './presence.js';
import type { PublishReply, State, Upstream } from './upstream.js';

export type { HeraldClientOptions } from './client-options.js';
export type { MessageHandler, MessageInfo } from './dispatch.js';

export interface SubscribeOptions {
  /**
   * Also receive what history holds after this message id (from `history()` or an earlier
   * session). Other handlers of the same channel in this client receive that replay too.
   */
  since?: string;
}

export interface Subscription {
  readonly channel: string;
  /** Resolves once the server has confirmed the subscription; rejects if it refused it (one it cannot take just now, advising a retry, is asked again). */
  readonly ready: Promise<void>;
  unsubscribe(): void;
  /**
   * On a channel with join/leave events (the server's rules opt in), a member joined, left (after
   * the server's grace window: reconnects and tab handovers are not leaves), or — on a crowded
   * channel — the members were counted. A user is not told of its own comings and goings.
   * Returns a function that stops listening.
   * @example subscription.on('join', ({ user, info }) => show(`${info?.name ?? user} is here`));
   */
  on<K extends keyof SubscriptionEvents>(event: K, listener: SubscriptionEvents[K]): () => void;
}

export interface HistoryMessage {
  readonly id: string;
  readonly channel: string;
  readonly data: any;
  readonly publishedAt: number;
}

export class Herald {
  /** The Bayeux endpoint, as an absolute http(s) URL. */
  readonly url: string;
  readonly #upstream: Upstream;
  readonly #dispatch = new Dispatch();
  readonly #fetch: typeof fetch | undefined;
  readonly #token: TokenSource | undefined;
  /** The page's visibility and input listeners, removed on close. */
  readonly #page: PageActivity | undefined;

  constructor(url: string, options: HeraldClientOptions = {}) {
    this.url = resolveEndpoint(url);
    this.#token = options.token;
    const host = globalThis as Record<string, any>;
    this.#fetch = options.fetch ?? (typeof host.fetch === 'function' ? host.fetch.bind(globalThis) : undefined);
    const { upstream, page } = createUpstream(this.url, options, this.#fetch, this.#dispatch, () => this.#dispatch.seen);
    this.#upstream = upstream;
    this.#page = page;
  }

  get state(): State {
    return this.#dispatch.connectionState;
  }

  /** The connection type in use while connected (for a tab that shares, the leader's). */
  get transport(): ConnectionType | undefined {
    return this.#dispatch.transport;
  }

  /** True while connected by interval polling (the last resort where held requests are cut). */
  get polling(): boolean {
    return this.#dispatch.polling;
  }

  /** Calls `handler` with each message published on `channel` (a name, or a pattern ending in `*` or `**`). */
  subscribe(channel: string, handler: MessageHandler, options: SubscribeOptions = {}): Subscription {
    const parsed = parseChannel(channel);
    if (parsed === undefined || parsed.kind === 'meta') throw new TypeError(`cannot subscribe to ${JSON.stringify(channel)}: not a channel name or pattern`);
    if (typeof handler !== 'function') throw new TypeError('subscribe needs a handler function');
    let settle!: (error?: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    // Awaiting `ready` is optional: an unobserved refusal must not become an unhandled rejection.
    ready.catch(() => undefined);
    const listener: Listener = { handler, settle };
    const first = this.#dispatch.add(channel, listener);
    if (options.since !== undefined) this.#dispatch.markSeen(channel, options.since);
    if (first || options.since !== undefined) this.#upstream.want(channel, options.since);
    else if (this.#dispatch.confirmed(channel)) settle();
    return {
      channel,
      ready,
      on: (event, eventListener) => {
        if (event !== 'join' && event !== 'leave' && event !== 'count') throw new TypeError(`no such subscription event: ${String(event)} (use join, leave, count)`);
        const events = (listener.events ??= new Map());
        const set = events.get(event) ?? new Set();
        events.set(event, set.add(eventListener));
        return () => void set.delete(eventListener);
      },
      unsubscribe: () => {
        if (this.#dispatch.remove(channel, listener)) this.#upstream.unwant(channel);
      },
    };
  }

  /** Publishes `data` on `channel`; resolves with the server's reply, rejects if it refused the message. */
  publish(channel: string, data: unknown): Promise<PublishReply> {
    const parsed = parseChannel(channel);
    if (parsed === undefined || parsed.kind === 'meta' || parsed.wildcard !== 'none') {
      return Promise.reject(new TypeError(`cannot publish to ${JSON.stringify(channel)}: not a channel name`));
    }
    if (data === undefined) return Promise.reject(new TypeError('publish needs data'));
    return this.#upstream.publish(channel, data);
  }

  /** The messages the server keeps for a channel (its REST `/history` endpoint, on the same host). */
  async history(channel: string, query: { since?: string; limit?: number } = {}): Promise<{ messages: HistoryMessage[]; gap: boolean }> {
    if (this.#fetch === undefined) throw new Error('history needs fetch');
    const parsed = parseChannel(channel);
    if (parsed === undefined || parsed.kind !== 'broadcast' || parsed.wildcard !== 'none') throw new TypeError(`no history for ${JSON.stringify(channel)}`);
    const params = new URLSearchParams();
    if (query.since !== undefined) params.set('since', query.since);
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    const url = `${new URL(this.url).origin}/history${channel}?${params}`;
    const token = typeof this.#token === 'function' ? await this.#token() : this.#token;
    const headers: Record<string, string> = token === undefined || token === '' ? {} : { Authorization: `Bearer ${token}` };
    const response = await this.#fetch(url, { credentials: 'include', cache: 'no-store', headers });
    if (!response.ok) throw new Error(`history of ${channel}: HTTP ${response.status}`);
    return (await response.json()) as { messages: HistoryMessage[]; gap: boolean };
  }

  /**
   * `fetch`, for the application's own endpoints on the Herald server's origin: while this client
   * polls (no connect out), the reply may bring its queued messages (the server sends them with
   * `herald.piggyback(req, res, body)`), which go to the subscribers in order as if a poll had
   * brought them; the caller gets the application's response unchanged. Requests elsewhere, or
   * with a `signal`, go out untouched.
   * @example const answer = await (await herald.fetch('/validate', { method: 'POST', body })).json();
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const fetchImpl = this.#fetch;
    if (fetchImpl === undefined) return Promise.reject(new Error('herald.fetch needs fetch'));
    const base = (globalThis as { location?: { href: string } }).location?.href ?? this.url;
    const url = new URL(typeof input === 'object' && 'url' in input ? input.url : String(input), base);
    // The clientId is the session's secret: it goes to the Herald server's origin only.
    if (url.origin !== new URL(this.url).origin) return fetchImpl(input, init);
    return this.#upstream.fetch(fetchImpl, typeof input === 'object' && 'url' in input ? input : url, init);
  }

  /**
   * Who is on `channel` (a name or pattern), on every node of the server: its users with their
   * connections and info, or with `count`, how many. Asks over the Bayeux connection (the
   * `/service/presence` service); the server answers what `GET /presence/{channel}` would.
   */
  async presence(channel: string, options: { count?: boolean; limit?: number } = {}): Promise<PresenceListing> {
    const parsed = parseChannel(channel);
    if (parsed === undefined || parsed.kind !== 'broadcast') throw new TypeError(`no presence for ${JSON.stringify(channel)}`);
    const reply = await this.#upstream.publish('/service/presence', { channel, ...options });
    const answer = reply.data as (PresenceListing & { error?: string }) | undefined;
    if (answer === undefined || typeof answer !== 'object') throw new Error(`presence of ${channel}: no answer`);
    if (typeof answer.error === 'string') throw new Error(`presence of ${channel}: ${answer.error}`);
    return answer;
  }

  /** The channels (and patterns) the server has subscribed this client to. */
  get serverSubscriptions(): string[] {
    return this.#dispatch.serverSubscriptions;
  }

  /** Listens for `state` changes, `gap`s, handler `error`s and server subscriptions; returns a function that stops listening. */
  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void {
    return this.#dispatch.on(event, listener);
  }

  /** Disconnects from the server (or leaves the tab group) for good. */
  close(): void {
    this.#upstream.close();
    this.#page?.stop();
    this.#dispatch.close();
  }
}

/** The endpoint as an absolute http(s) URL: relative ones resolve against the page. */
function resolveEndpoint(url: string): string {
  const base = (globalThis as { location?: { href: string } }).location?.href;
  const resolved = new URL(url, base);
  if (resolved.protocol === 'ws:') resolved.protocol = 'http:';
  if (resolved.protocol === 'wss:') resolved.protocol = 'https:';
  if (resolved.protocol !== 'http:' && resolved.protocol !== 'https:') throw new TypeError(`not an http(s) or ws(s) URL: ${url}`);
  resolved.hash = '';
  return resolved.href.replace(/\/+$/, '');
}
