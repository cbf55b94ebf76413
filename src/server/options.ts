/**
 * @module
 * What createHerald accepts: every option with its meaning, the defaults, and the checks that
 * turn a bad value into an error naming the option.
 */
import { getHeapStatistics } from 'node:v8';
import type { JSONWebKeySet } from 'jose';
import { BAYEUX_DEFAULTS } from '../bayeux/bayeux-server.js';
import { validatePermissions } from '../core/access.js';
import type { Permissions } from '../core/access.js';
import type { Clock } from '../core/clock.js';
import type { Engine } from '../core/engine.js';
import { HeraldError } from '../core/errors.js';
import type { SlowConsumerPolicy } from '../core/session.js';
import { LOCALHOST_ORIGINS } from './cors.js';
import type { Logger } from './logger.js';

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
  /** Messages per second one Bayeux client may send (publish, subscribe, unsubscribe; bursts of twice that); 0 = unlimited. */
  maxMessageRate?: number;
  /** Subscriptions one session may hold. */
  maxSubscriptions?: number;
  /** Sessions (Bayeux clients, REST subscriptions) one IP address may hold at once; 0 = unlimited. */
  maxSessionsPerAddress?: number;
  /** Open connections (TCP) across the servers Herald serves on; 0 = unlimited. Above it, 503. */
  maxConnections?: number;
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
  /** Period of the comment lines that keep an event stream alive. */
  heartbeatMs?: number;
  /** Key for `POST /pub/…` and `POST /sign` (`Authorization: Bearer <key>`); without one only loopback clients may. */
  publishKey?: string;
  /** Key for `/metrics` and the `/dashboard` (`Authorization: Bearer <key>`, or `?key=` once); without one only loopback clients may. */
  adminKey?: string;
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

export const TRANSPORT_NAMES = ['websocket', 'long-polling', 'callback-polling', 'eventsource'] as const;
export type TransportName = (typeof TRANSPORT_NAMES)[number];

type Secrets = 'publishKey' | 'adminKey' | 'jwtSecret' | 'jwtPublicKey' | 'jwks' | 'jwtIssuer' | 'jwtAudience';
export type Settings = Required<Omit<HeraldOptions, 'engine' | 'logger' | 'clock' | Secrets>> & Pick<HeraldOptions, Secrets>;

/**
 * 30% of the heap V8 may grow to. The heap limit includes the young generation, the collector
 * needs room to work, and connections and requests in flight need theirs: measured under a flood
 * of 130 KB publishes, a `--max-old-space-size=128` process died at 50% and held at 30% (issue 15.6).
 */
export const MEMORY_BUDGET_SHARE = 0.3;

export function defaultMemoryBudget(): number {
  const MiB = 1024 * 1024;
  // Whole mebibytes, so that `herald config --print` shows it as a size one would write.
  return Math.max(1, Math.floor((getHeapStatistics().heap_size_limit * MEMORY_BUDGET_SHARE) / MiB)) * MiB;
}

export const HERALD_DEFAULTS: Readonly<Settings> = {
  paths: ['/bayeux', '/cometd'],
  timeoutMs: BAYEUX_DEFAULTS.timeoutMs,
  intervalMs: BAYEUX_DEFAULTS.intervalMs,
  maxIntervalMs: BAYEUX_DEFAULTS.maxIntervalMs,
  maxQueue: 10_000,
  slowConsumer: 'disconnect',
  maxBodyBytes: 1024 * 1024,
  maxMessageBytes: 128 * 1024,
  maxMessageRate: 100,
  maxSubscriptions: 1024,
  maxSessionsPerAddress: 1000,
  maxConnections: 10_000,
  allowedOrigins: [LOCALHOST_ORIGINS],
  maxSessionsPerBrowser: BAYEUX_DEFAULTS.maxSessionsPerBrowser,
  multiSessionIntervalMs: BAYEUX_DEFAULTS.multiSessionIntervalMs,
  allowPublishWithoutSession: BAYEUX_DEFAULTS.allowPublishWithoutSession,
  cookieAttributes: 'Path=/; HttpOnly; SameSite=Lax',
  transports: TRANSPORT_NAMES,
  pingIntervalMs: 25_000,
  maxBufferedBytes: 4 * 1024 * 1024,
  heartbeatMs: 15_000,
  historySize: 100,
  historyTtlMs: 0,
  memoryBudgetBytes: defaultMemoryBudget(),
  clientScript: true,
  demo: false,
  drainWindowMs: 0,
  shutdownGraceMs: 5_000,
  permissions: {},
};

export function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

export function validate(config: Settings): void {
  const durations = ['timeoutMs', 'intervalMs', 'maxIntervalMs', 'multiSessionIntervalMs', 'shutdownGraceMs', 'drainWindowMs', 'pingIntervalMs', 'heartbeatMs', 'historyTtlMs'] as const;
  for (const key of durations) {
    const value = config[key];
    // A zero period would spin a timer.
    const least = key === 'pingIntervalMs' || key === 'heartbeatMs' ? 1 : 0;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < least) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${key} must be a non-negative number of milliseconds, got ${String(value)}`);
    }
  }
  if (config.drainWindowMs > config.shutdownGraceMs) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `drainWindowMs (${config.drainWindowMs}) must not exceed shutdownGraceMs (${config.shutdownGraceMs})`);
  }
  if (!Number.isInteger(config.historySize) || config.historySize < 0) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `historySize must be a non-negative integer, got ${String(config.historySize)}`);
  }
  for (const key of ['publishKey', 'adminKey'] as const) {
    const value = config[key];
    if (value !== undefined && (typeof value !== 'string' || value.length < 16)) throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${key} must be at least 16 characters`);
  }
  try {
    validatePermissions(config.permissions);
  } catch (error) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', (error as Error).message, { cause: error });
  }
  for (const key of ['maxQueue', 'maxBodyBytes', 'maxBufferedBytes', 'maxMessageBytes', 'maxSubscriptions', 'memoryBudgetBytes'] as const) {
    const value = config[key];
    if (!Number.isInteger(value) || value < 1) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${key} must be a positive integer, got ${String(value)}`);
    }
  }
  for (const key of ['maxMessageRate', 'maxSessionsPerAddress', 'maxConnections'] as const) {
    const value = config[key];
    if (!Number.isInteger(value) || value < 0) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${key} must be a whole number (0 = unlimited), got ${String(value)}`);
    }
  }
  if (config.slowConsumer !== 'disconnect' && config.slowConsumer !== 'drop-oldest') {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `slowConsumer must be "disconnect" or "drop-oldest", got ${JSON.stringify(config.slowConsumer)}`);
  }
  if (config.transports.length === 0 || config.transports.some((name) => !TRANSPORT_NAMES.includes(name))) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `transports must be some of ${TRANSPORT_NAMES.join(', ')}, got ${config.transports.join(', ') || 'none'}`);
  }
  if (!config.transports.includes('long-polling') && !config.transports.includes('callback-polling')) {
    // Every Bayeux client handshakes over one of these (the spec makes long-polling mandatory).
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', 'transports must include long-polling or callback-polling');
  }
  for (const path of config.paths) {
    if (!/^\/[\w\-./]*$/.test(path) || path.endsWith('/')) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `path ${JSON.stringify(path)} must start with / and not end with /`);
    }
  }
}
