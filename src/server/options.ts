/**
 * @module
 * What createHerald accepts: every option with its meaning. Their defaults, ranges and checks
 * are in settings.ts, with `herald serve`'s flags for them.
 */
import type { JSONWebKeySet } from 'jose';
import type { Permissions } from '../core/access.js';
import type { Clock } from '../core/clock.js';
import type { Engine } from '../core/engine.js';
import type { SlowConsumerPolicy } from '../core/session.js';
import type { Logger } from './logger.js';
import type { TransportName } from './settings.js';
import type { WebhookEventType, WebhookTarget } from './webhooks.js';

export interface HeraldOptions {
  /**
   * Where messages get ids and history: an Engine, or `memory` (the default: embedded, one
   * process), or a `redis://host:port` URL to join a cluster of nodes through Redis.
   */
  engine?: Engine | string;
  /** Paths of the Bayeux endpoint; each also serves its sub-paths (`/bayeux/connect`, …). */
  paths?: readonly string[];
  /** How long a connect is held when nothing arrives. */
  timeoutMs?: number;
  /** Delay advised between a connect's reply and the next connect. */
  intervalMs?: number;
  /** A session with no connect for this long (after `intervalMs`) is expired. */
  maxIntervalMs?: number;
  /** Deliveries a session may queue before the slow-consumer policy acts. */
  maxQueue?: number;
  /**
   * What a full queue does: `disconnect` closes the session (the client reconnects and resumes
   * from history), `drop-oldest` drops its oldest delivery and reports the channel as a gap to
   * clients that resume (Herald's); others are disconnected.
   */
  slowConsumer?: SlowConsumerPolicy;
  /** Largest request body or WebSocket frame (413 / close 1009 above). */
  maxBodyBytes?: number;
  /** Largest message a client or the REST API may publish, as JSON bytes of its data. */
  maxMessageBytes?: number;
  /** Messages one batch publish (`POST /pub`, `herald.publishBatch()`) may carry. */
  maxBatchMessages?: number;
  /**
   * How long an idempotency key keeps a retried publish from taking effect again (the retry is
   * answered with the first publish's id): cluster-wide with Redis, per node in memory.
   */
  idempotencyWindowMs?: number;
  /** Idempotency keys the memory engine keeps at most (per node); past it the oldest are forgotten before their window ends. */
  idempotencyMaxKeys?: number;
  /** Messages per second one Bayeux client may send (publish, subscribe, unsubscribe; bursts of twice that); 0 = unlimited. */
  maxMessageRate?: number;
  /** Subscriptions one session may hold. */
  maxSubscriptions?: number;
  /** Sessions (Bayeux clients, REST subscriptions) one client address may hold at once; 0 = unlimited. */
  maxSessionsPerAddress?: number;
  /**
   * Open connections (TCP) across the servers Herald serves on; 0 = unlimited. Above it, 503.
   * Default: the process's open-files limit less some for everything else (connection-cap.ts).
   */
  maxConnections?: number;
  /**
   * Proxies (addresses or CIDR ranges, IPv4 or IPv6) whose `X-Forwarded-For` (else `Forwarded`)
   * is believed: a request from one of them is counted, logged and recorded as coming from the
   * right-most address in it that is not a trusted proxy. Default: none (the peer is the client).
   */
  trustedProxies?: readonly string[];
  /** Origins allowed to call Herald from a browser (`*`, `localhost`, or exact origins); its own origin always is. */
  allowedOrigins?: readonly string[];
  /** Long-polls one browser may hold at once; < 0 = unlimited. */
  maxSessionsPerBrowser?: number;
  /** Poll interval advised to a browser's extra sessions. */
  multiSessionIntervalMs?: number;
  /** Accept Bayeux publishes that carry no clientId. */
  allowPublishWithoutSession?: boolean;
  /** Attributes of the `BAYEUX_BROWSER` cookie. */
  cookieAttributes?: string;
  /** Connection types to offer, in order of preference (default: all). */
  transports?: readonly TransportName[];
  /** WebSocket ping period; a peer silent for a whole period is dropped. */
  pingIntervalMs?: number;
  /** A WebSocket or event stream whose unsent bytes exceed this is closed as a slow consumer. */
  maxBufferedBytes?: number;
  /**
   * Milliseconds a client's messages are gathered before they are written, so a burst leaves in one
   * write per socket (less CPU, up to this much more latency); 0 (the default) writes each tick.
   */
  writeDelayMs?: number;
  /**
   * Longest a client may take to send a whole request, headers and body, on servers `listen()`
   * starts (408 and the connection cut beyond). An attached server keeps its own timeouts.
   */
  requestTimeoutMs?: number;
  /** Period of the comment lines that keep an event stream alive. */
  heartbeatMs?: number;
  /** Key for `POST /pub/…` and `POST /sign` (`Authorization: Bearer <key>`); without one only loopback clients may. */
  publishKey?: string;
  /** Key for `/metrics` and the `/dashboard` (`Authorization: Bearer <key>`, or `?key=` once); without one only loopback clients may. */
  adminKey?: string;
  /** Show sessions' client addresses in the inspection of a user's sessions (default false: personal data). */
  inspectAddresses?: boolean;
  /** HS256 secret (≥ 32 characters) that clients' JWTs are signed with. */
  jwtSecret?: string;
  /** PEM public key (RSA → RS256, P-256 → ES256) that clients' JWTs are signed with. */
  jwtPublicKey?: string;
  /** A JSON Web Key Set (RS256/ES256 keys, by `kid`) that clients' JWTs are signed with. */
  jwks?: JSONWebKeySet;
  /** When set, client JWTs must carry this `iss`. */
  jwtIssuer?: string;
  /** When set, client JWTs must carry this `aud`. */
  jwtAudience?: string;
  /**
   * Who may subscribe and publish where. Without rules, channels are open to anyone until a JWT key
   * is configured, and then only to tokens whose `subscribe`/`publish` claims grant them.
   */
  permissions?: Permissions;
  /**
   * Backend decision hooks (http:// or https:// URLs): Herald POSTs the request's context and the
   * backend allows or denies. `connectHook` is asked at every Bayeux handshake; `subscribeHook` and
   * `publishHook` where a permissions rule says `"hook"`. They fail closed.
   */
  connectHook?: string;
  subscribeHook?: string;
  publishHook?: string;
  /** Sent to the hooks as `Authorization: Bearer <hookSecret>`. */
  hookSecret?: string;
  /** A hook that has not answered within this long refuses (default 2 s). */
  hookTimeoutMs?: number;
  /** Hook calls in flight at once; as many more may wait, and the rest are refused (default 64). */
  hookConcurrency?: number;
  /**
   * How long a member of a channel with join/leave events (a permissions rule with `"presence":
   * "events"`) must be away before it leaves; 0 (the default): `maxIntervalMs` + 5 s.
   */
  presenceGraceMs?: number;
  /** Above this many members, a channel's subscribers get `count` events instead of joins and leaves (default 100). */
  presenceMaxMembers?: number;
  /** How often the presence of channels with events is read again (dead nodes, counts); default 5 s. */
  presenceSweepMs?: number;
  /**
   * Backend URLs sent `channel.occupied` / `channel.vacated` of channels with join/leave events
   * (webhooks.ts): a URL gets the events `webhookEvents` names (all when unset); `{url, events}`
   * its own. Needs `webhookSecret`.
   */
  webhooks?: readonly WebhookTarget[];
  /** The events sent to the webhooks given as bare URLs (default: all). */
  webhookEvents?: readonly WebhookEventType[];
  /** Signs each webhook request (header `Herald-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`). */
  webhookSecret?: string;
  /** Webhook events kept at most (cluster-wide, in the engine's outbox); a receiver further behind loses the oldest it had not taken (default 10,000). */
  webhookMaxPending?: number;
  /** Attempts per webhook request before its events are dropped (default 8). */
  webhookAttempts?: number;
  /** The wait before a webhook's first retry; each next one doubles, with jitter (default 1 s). */
  webhookRetryMs?: number;
  /** How long the sender, woken by a webhook event, waits before sending, so that events fired together go in one request (default 50 ms; 0: at once). */
  webhookBatchWaitMs?: number;
  /** Messages kept per channel for resumption and `/history` (engines built from a name or URL). */
  historySize?: number;
  /** Messages older than this leave history; 0 = no age limit (engines built from a name or URL). */
  historyTtlMs?: number;
  /**
   * Bytes that history (of the memory engine built from `memory`) and session queues may hold
   * together, counted by messages' JSON size. When reached, the oldest channels' history is
   * forgotten (resumers get a gap signal) or the heaviest queues get the slow-consumer policy,
   * whichever holds more. Default: 30% of the heap limit (`node --max-old-space-size`).
   */
  memoryBudgetBytes?: number;
  /** Serve the browser client at `/herald.js` (default true). */
  clientScript?: boolean;
  /** Serve the demo chat at `/` and the ticker at `/ticker` (default false; `herald serve` turns it on). */
  demo?: boolean;
  /**
   * close() tells sessions to reconnect (elsewhere) at moments spread at random over this window,
   * so a cluster's other nodes take them gradually, not all at once (default 0: all at once).
   */
  drainWindowMs?: number;
  /** close() ends within this long of its start, cutting whatever is still open (at least the drain window). */
  shutdownGraceMs?: number;
  logger?: Logger;
  clock?: Clock;
}

export { connectionTypes, defaultMemoryBudget, HERALD_DEFAULTS, MEMORY_BUDGET_SHARE, TRANSPORT_NAMES, validate } from './settings.js';
export type { Settings, TransportName } from './settings.js';

export function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}
