/**
 * @module
 * The client's options, their defaults, and what they make: the holder of the server connection —
 * this tab's own link, or a share of another tab's — with the transports the environment has and
 * polling's intervals paced by the page's activity.
 */
import type { ActivitySource } from './activity.js';
import { ALWAYS_ACTIVE, PageActivity } from './activity.js';
import type { BackoffOptions } from './backoff.js';
import type { TokenSource } from './connection.js';
import { Link } from './link.js';
import { PollSchedule } from './poll-schedule.js';
import type { ConnectionType } from './protocol.js';
import { CONNECTION_TYPES } from './protocol.js';
import { canShareTabs, TabShare } from './tabs.js';
import type { IntervalPolling } from './transport-choice.js';
import { isAvailable } from './transports/create.js';
import type { EventSourceConstructor, TransportEnvironment, WebSocketConstructor } from './transports/transport.js';
import type { Downstream, Upstream } from './upstream.js';

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

export const CLIENT_DEFAULTS = { maxNetworkDelayMs: 10_000, upgradeAfterMs: 60_000, intervalPolling: 'fallback', pollIntervalMs: 1000, maxPollIntervalMs: 30_000, idleAfterMs: 60_000 } as const;

export interface ClientUpstream {
  readonly upstream: Upstream;
  /** The page's visibility and input listeners (when the options left activity to the page), to stop on close. */
  readonly page: PageActivity | undefined;
}

/**
 * The holder of the connection to `url` (an absolute http(s) URL) that `options` describe, telling
 * `downstream`. `seenIds`: the newest id seen per channel, where a tab taking over resumes from.
 */
export function createUpstream(
  url: string,
  options: HeraldClientOptions,
  fetchImpl: typeof fetch | undefined,
  downstream: Downstream,
  seenIds: () => ReadonlyMap<string, string>,
): ClientUpstream {
  const host = globalThis as Record<string, any>;
  const env: TransportEnvironment = {
    url,
    WebSocket: options.WebSocket ?? host.WebSocket,
    EventSource: options.EventSource ?? host.EventSource,
    fetch: fetchImpl,
    document: host.document,
  };
  const transports = (options.transports ?? CONNECTION_TYPES).filter((type) => isAvailable(type, env));
  let page: PageActivity | undefined;
  if (options.activity === undefined && host.document !== undefined) {
    page = new PageActivity(host.document, globalThis as any, options.idleAfterMs ?? CLIENT_DEFAULTS.idleAfterMs);
  }
  const poll = new PollSchedule(
    { minMs: options.pollIntervalMs ?? CLIENT_DEFAULTS.pollIntervalMs, maxMs: options.maxPollIntervalMs ?? CLIENT_DEFAULTS.maxPollIntervalMs },
    options.activity ?? page ?? ALWAYS_ACTIVE,
  );
  const makeLink = (to: Downstream, seen: ReadonlyMap<string, string>) =>
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
      seen,
    );
  const share = (options.shareConnection ?? true) && canShareTabs();
  const upstream = share ? new TabShare(`herald:${url}`, downstream, makeLink, seenIds) : makeLink(downstream, new Map());
  return { upstream, page };
}
