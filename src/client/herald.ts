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
import { expandChannel, parseChannel } from '../core/channel.js';
import type { ActivitySource } from './activity.js';
import { ALWAYS_ACTIVE, PageActivity } from './activity.js';
import type { BackoffOptions } from './backoff.js';
import type { TokenSource } from './connection.js';
import { Link } from './link.js';
import type { IntervalPolling } from './transport-choice.js';
import { PollSchedule } from './poll-schedule.js';
import type { ConnectionType } from './protocol.js';
import { CONNECTION_TYPES } from './protocol.js';
import { canShareTabs, TabShare } from './tabs.js';
import { isAvailable } from './transports/create.js';
import type { EventSourceConstructor, TransportEnvironment, WebSocketConstructor } from './transports/transport.js';
import type { PresenceListing, SubscriptionEvents } from './presence.js';
import type { Downstream, PublishReply, State, StateDetail, Upstream } from './upstream.js';

export interface HeraldClientOptions {
  /** Connection types to use, best first (default: websocket, eventsource, long-polling, callback-polling). */
  transports?: readonly ConnectionType[];
  /** Reconnection delays after errors (default: from 1 s, doubling, up to 30 s, half of each drawn at random). */
  backoff?: BackoffOptions;
  /** How long a reply may take beyond the server's hold time before the connection counts as broken (default 10 s). */
  maxNetworkDelayMs?: number;
  /** After falling back, try the best transport again after this long, doubling while it fails (default 60 s; 0 = never). */
  upgradeAfterMs?: number;
  /**
   * Interval polling, the last resort where every held request is cut (a proxy's N-second
   * timeout): `'fallback'` (default) when holds keep being cut at the same age — climbing back to
   * the better transports later, as from any fallback; `'always'`, from the start; `'never'`.
   */
  intervalPolling?: IntervalPolling;
  /** While polling: the interval while the page is visible and its user active, or messages flow (default 1 s). */
  pollIntervalMs?: number;
  /** While polling: the interval doubles up to this while the page is hidden or its user idle (default 30 s; the server's max-interval may cap it lower). */
  maxPollIntervalMs?: number;
  /** In a browser: no input (pointer, keys, wheel, touch, scroll) for this long and the user counts as idle (default 60 s). */
  idleAfterMs?: number;
  /**
   * Whether the page is resting (hidden or idle) and when it wakes, for polling's intervals.
   * Default: in a browser the page's visibility and input; elsewhere always visible and active.
   */
  activity?: ActivitySource;
  /** Tabs of one origin share one server connection (default true where the browser can). */
  shareConnection?: boolean;
  /**
   * Sent in the handshake's `ext`. `ext.herald.info` (e.g. `{ name: 'Ada' }`) is what a client
   * without a token shows in presence and join events: a handle, not an identity (it stays anonymous).
   */
  ext?: Record<string, unknown>;
  /**
   * A token (JWT, or one from the server's `POST /sign`) naming what this client may subscribe to
   * and publish on; or a function returning a fresh one, asked on every handshake — so a client
   * whose token expired comes back with a new one and resumes where it was. Also sent with `history()`.
   */
  token?: TokenSource;
  /** A WebSocket implementation where there is no global one (in Node 20, the WebSocket class of the `ws` package). */
  WebSocket?: WebSocketConstructor;
  EventSource?: EventSourceConstructor;
  fetch?: typeof fetch;
  /** Source of the back-off jitter, in [0, 1). */
  random?: () => number;
}

export interface SubscribeOptions {
  /**
   * Also receive what history holds after this message id (from `history()` or an earlier
   * session). Other handlers of the same channel in this client receive that replay too.
   */
  since?: string;
}

/** What a handler is told besides the data. */
export interface MessageInfo {
  /** The concrete channel the message was published on. */
  readonly channel: string;
  /** Herald's id for the message. */
  readonly id: string | undefined;
}

export type MessageHandler = (data: any, info: MessageInfo) => void;

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

interface ClientEvents {
  state: (state: State, detail: StateDetail) => void;
  /** Messages on a channel may have been lost while disconnected: history could not vouch for the time away. */
  gap: (channel: string) => void;
  /** A handler threw, or a subscription was refused. */
  error: (error: Error) => void;
  /**
   * The server's backend subscribed this client to `channel` (a channel or pattern), or no longer
   * does. Its messages go to `serverMessage` handlers (and to this client's own handlers of the
   * channel, if any); the client keeps it across reconnects, resuming from the last id seen.
   */
  serverSubscription: (channel: string, subscribed: boolean) => void;
  /** A message on a channel the server subscribed this client to; `info.subscription` names which. */
  serverMessage: (data: any, info: MessageInfo & { readonly subscription: string }) => void;
}

interface Listener {
  readonly handler: MessageHandler;
  readonly settle: (error?: Error) => void;
  /** Its presence event listeners (`subscription.on`), by event. */
  events?: Map<string, Set<(value: any) => void>>;
}

export const CLIENT_DEFAULTS = { maxNetworkDelayMs: 10_000, upgradeAfterMs: 60_000, intervalPolling: 'fallback', pollIntervalMs: 1000, maxPollIntervalMs: 30_000, idleAfterMs: 60_000 } as const;

/** Channels whose newest message id the client keeps to drop duplicates (see #markSeen). */
export const MAX_SEEN_CHANNELS = 10_000;

export class Herald {
  /** The Bayeux endpoint, as an absolute http(s) URL. */
  readonly url: string;
  readonly #upstream: Upstream;
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #confirmed = new Set<string>();
  /** Newest id delivered per concrete channel: older or equal ids are duplicates. */
  readonly #seen = new Map<string, string>();
  readonly #events: { [K in keyof ClientEvents]: Set<ClientEvents[K]> } = { state: new Set(), gap: new Set(), error: new Set(), serverSubscription: new Set(), serverMessage: new Set() };
  /** The channels the server subscribed this client to. */
  readonly #server = new Set<string>();
  readonly #fetch: typeof fetch | undefined;
  readonly #token: TokenSource | undefined;
  #state: State = 'connecting';
  #transport: ConnectionType | undefined;
  #polling = false;
  /** The page's visibility and input listeners, removed on close. */
  readonly #page: PageActivity | undefined;

  constructor(url: string, options: HeraldClientOptions = {}) {
    this.url = resolveEndpoint(url);
    this.#token = options.token;
    const host = globalThis as Record<string, any>;
    this.#fetch = options.fetch ?? (typeof host.fetch === 'function' ? host.fetch.bind(globalThis) : undefined);
    const env: TransportEnvironment = {
      url: this.url,
      WebSocket: options.WebSocket ?? host.WebSocket,
      EventSource: options.EventSource ?? host.EventSource,
      fetch: this.#fetch,
      document: host.document,
    };
    const transports = (options.transports ?? CONNECTION_TYPES).filter((type) => isAvailable(type, env));
    if (options.activity === undefined && host.document !== undefined) {
      this.#page = new PageActivity(host.document, globalThis as any, options.idleAfterMs ?? CLIENT_DEFAULTS.idleAfterMs);
    }
    const poll = new PollSchedule(
      { minMs: options.pollIntervalMs ?? CLIENT_DEFAULTS.pollIntervalMs, maxMs: options.maxPollIntervalMs ?? CLIENT_DEFAULTS.maxPollIntervalMs },
      options.activity ?? this.#page ?? ALWAYS_ACTIVE,
    );
    const downstream = this.#downstream();
    const makeLink = (to: Downstream, seenIds: ReadonlyMap<string, string>) =>
      new Link(
        {
          env,
          transports,
          backoff: options.backoff ?? {},
          random: options.random ?? Math.random,
          maxNetworkDelayMs: options.maxNetworkDelayMs ?? CLIENT_DEFAULTS.maxNetworkDelayMs,
          upgradeAfterMs: options.upgradeAfterMs ?? CLIENT_DEFAULTS.upgradeAfterMs,
          handshakeExt: options.ext ?? {},
          token: options.token,
          intervalPolling: options.intervalPolling ?? CLIENT_DEFAULTS.intervalPolling,
          poll,
        },
        to,
        seenIds,
      );
    const share = (options.shareConnection ?? true) && canShareTabs();
    this.#upstream = share ? new TabShare(`herald:${this.url}`, downstream, makeLink, () => this.#seen) : makeLink(downstream, new Map());
  }

  get state(): State {
    return this.#state;
  }

  /** The connection type in use while connected (for a tab that shares, the leader's). */
  get transport(): ConnectionType | undefined {
    return this.#transport;
  }

  /** True while connected by interval polling (the last resort where held requests are cut). */
  get polling(): boolean {
    return this.#polling;
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
    let listeners = this.#listeners.get(channel);
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(channel, listeners);
    }
    listeners.add(listener);
    if (options.since !== undefined) this.#markSeen(channel, options.since);
    if (listeners.size === 1 || options.since !== undefined) this.#upstream.want(channel, options.since);
    else if (this.#confirmed.has(channel)) settle();
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
        // A set the client already dropped (a refused subscription) is no longer this channel's.
        if (!listeners.delete(listener) || listeners.size > 0 || this.#listeners.get(channel) !== listeners) return;
        this.#listeners.delete(channel);
        this.#confirmed.delete(channel);
        this.#upstream.unwant(channel);
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
    return [...this.#server];
  }

  /** Listens for `state` changes, `gap`s, handler `error`s and server subscriptions; returns a function that stops listening. */
  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void {
    const listeners = this.#events[event] as Set<ClientEvents[K]> | undefined;
    if (listeners === undefined) throw new TypeError(`no such event: ${String(event)}`);
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /** Disconnects from the server (or leaves the tab group) for good. */
  close(): void {
    this.#upstream.close();
    this.#page?.stop();
    for (const listeners of this.#listeners.values()) for (const listener of listeners) listener.settle(new Error('the client is closed'));
    this.#listeners.clear();
  }

  #downstream(): Downstream {
    return {
      deliver: (channel, data, id, event) => {
        if (event !== undefined) return this.#presenceEvent(channel, event, data);
        const matched: MessageHandler[] = [];
        let subscription: string | undefined;
        for (const pattern of expandChannel(channel)) {
          const listeners = this.#listeners.get(pattern);
          if (listeners !== undefined) for (const listener of listeners) matched.push(listener.handler);
          if (subscription === undefined && this.#server.has(pattern)) subscription = pattern;
        }
        if (subscription !== undefined) {
          const named = subscription;
          for (const listener of this.#events.serverMessage) matched.push((data, info) => listener(data, { ...info, subscription: named }));
        }
        // Only what this tab listens to counts as seen: a tab that subscribes later from an older
        // id (other tabs' traffic is relayed to all) must still get the messages after it.
        if (matched.length === 0 || (id !== undefined && !this.#markSeen(channel, id))) return;
        for (const handler of matched) {
          try {
            handler(data, { channel, id });
          } catch (error) {
            this.#emitError(error instanceof Error ? error : new Error(String(error)));
          }
        }
      },
      serverSubscription: (channel, subscribed) => {
        // Told again when a grant is renewed: only a change is news.
        if (subscribed === this.#server.has(channel)) return;
        if (subscribed) this.#server.add(channel);
        else this.#server.delete(channel);
        for (const listener of [...this.#events.serverSubscription]) listener(channel, subscribed);
      },
      state: (state, detail) => {
        this.#state = state;
        this.#transport = state === 'connected' ? detail.transport : undefined;
        this.#polling = state === 'connected' && detail.polling === true;
        for (const listener of [...this.#events.state]) listener(state, detail);
      },
      subscribed: (channel, error) => {
        const listeners = this.#listeners.get(channel);
        if (listeners === undefined) return;
        if (error === undefined) {
          this.#confirmed.add(channel);
          for (const listener of listeners) listener.settle();
          return;
        }
        this.#listeners.delete(channel);
        for (const listener of listeners) listener.settle(error);
        listeners.clear();
        this.#emitError(error);
      },
      gap: (channel) => {
        for (const listener of [...this.#events.gap]) listener(channel);
      },
    };
  }

  /**
   * Records `id` as seen on `channel`; false when it was seen already. Kept for the channels heard
   * from most recently, at most MAX_SEEN_CHANNELS: a pattern may bring messages from channels
   * without number, and a duplicate (a resume or transport switch replaying what came just before)
   * only ever follows close behind the original.
   */
  #markSeen(channel: string, id: string): boolean {
    const last = this.#seen.get(channel);
    if (last !== undefined && id <= last) return false;
    this.#seen.delete(channel);
    this.#seen.set(channel, id);
    if (this.#seen.size > MAX_SEEN_CHANNELS) this.#seen.delete(this.#seen.keys().next().value!);
    return true;
  }

  /** A presence event goes to the `on(…)` listeners of the subscriptions to exactly its channel. */
  #presenceEvent(channel: string, event: keyof SubscriptionEvents, data: unknown): void {
    if (typeof data !== 'object' || data === null) return;
    for (const listener of this.#listeners.get(channel) ?? []) {
      for (const handler of listener.events?.get(event) ?? []) {
        try {
          handler(data);
        } catch (error) {
          this.#emitError(error instanceof Error ? error : new Error(String(error)));
        }
      }
    }
  }

  #emitError(error: Error): void {
    if (this.#events.error.size === 0) {
      // Nobody listens: surface it the way an uncaught error in an event handler would be.
      queueMicrotask(() => {
        throw error;
      });
      return;
    }
    for (const listener of [...this.#events.error]) listener(error);
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
