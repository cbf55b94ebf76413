/**
 * @module
 * Wiring: builds the engine, sessions, hub, Bayeux front door and transports from one options
 * object, and serves them on any `http.Server`. The only place that knows every layer.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { BAYEUX_DEFAULTS, BayeuxServer } from '../bayeux/bayeux-server.js';
import type { Extension } from '../bayeux/extensions.js';
import type { ServiceHandler } from '../bayeux/services.js';
import { parseChannel } from '../core/channel.js';
import type { Clock } from '../core/clock.js';
import type { Engine } from '../core/engine.js';
import { HeraldError } from '../core/errors.js';
import { Hub } from '../core/hub.js';
import { MemoryEngine } from '../core/memory-engine.js';
import { RedisEngine } from '../engines/redis/redis-engine.js';
import type { Message } from '../core/message.js';
import { SessionStore } from '../core/session-store.js';
import type { SlowConsumerPolicy } from '../core/session.js';
import { LimitCounters } from '../core/limits.js';
import type { LimitName } from '../core/limits.js';
import { BAYEUX_JSON, BAYEUX_JSON_WITH_ID } from '../bayeux/message.js';
import { EventSourceTransport } from '../transports/eventsource.js';
import { LongPollingTransport } from '../transports/long-polling.js';
import { CLOSE, WebSocketTransport } from '../transports/websocket.js';
import { refuseUpgrade, sendError } from '../transports/http.js';
import { createOriginPolicy, LOCALHOST_ORIGINS } from './cors.js';
import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';
import { Router } from './router.js';
import { StaticFiles } from './static-files.js';
import { createAdminGate, createRestGate } from './auth.js';
import { Dashboard } from './dashboard.js';
import { InstrumentedEngine } from './instrumented-engine.js';
import { Metrics } from './metrics.js';
import { signingSecretFrom, Tokens } from './tokens.js';
import { ChannelAccess, validatePermissions } from '../core/access.js';
import type { Permissions } from '../core/access.js';
import type { JSONWebKeySet } from 'jose';
import { RestSign } from '../rest/sign.js';
import { RestHistory } from '../rest/history.js';
import { RestPresence } from '../rest/presence.js';
import { RestPublish } from '../rest/publish.js';
import { RestSubscribe } from '../rest/subscribe.js';
import { SubscribePoll } from '../rest/subscribe-poll.js';

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
type Settings = Required<Omit<HeraldOptions, 'engine' | 'logger' | 'clock' | Secrets>> & Pick<HeraldOptions, Secrets>;

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
  clientScript: true,
  demo: false,
  drainWindowMs: 0,
  shutdownGraceMs: 5_000,
  permissions: {},
};

export interface HeraldStats {
  readonly sessions: number;
  readonly heldConnects: number;
  readonly patterns: number;
  readonly webSockets: number;
  readonly connections: number;
  /** How often each limit refused something (or, for slow consumers, dropped or closed). */
  readonly limits: Record<LimitName, number>;
}

export interface Herald {
  /** Serves the request if it is Herald's; false (and untouched) otherwise. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** Takes a WebSocket upgrade if it is for a Bayeux path; false (socket untouched) otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Serves Herald's paths on an existing server; its other requests go to the listeners it had. */
  attach(server: Server): void;
  /** Starts a server of its own. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** Publishes from the server side, as any client would. */
  publish(channel: string, data: unknown): Promise<Message>;
  /** Adds a Bayeux extension (incoming/outgoing hooks). */
  use(extension: Extension): void;
  /** Answers messages published on a `/service/**` channel or pattern. */
  service(pattern: string, handler: ServiceHandler): void;
  readonly sessionCount: number;
  /** Counts for operators and tests: sessions, held connects, subscribed patterns. */
  stats(): HeraldStats;
  /**
   * Drains: stops accepting, tells every session to reconnect (elsewhere) at moments spread over
   * `drainWindowMs`, closes connections, closes the engine; resolves within `shutdownGraceMs`.
   */
  close(): Promise<void>;
}

/**
 * @example
 * const herald = createHerald({ timeoutMs: 25_000 });
 * await herald.listen(8080, '127.0.0.1');
 * await herald.publish('/chat/room1', { text: 'hello' });
 */
export function createHerald(options: HeraldOptions = {}): Herald {
  const config: Settings = { ...HERALD_DEFAULTS, ...definedOnly(options) };
  const logger = options.logger ?? silentLogger;
  validate(config);
  const configured = buildEngine(options.engine ?? 'memory', config, logger, options.clock);
  const lifecycle = (event: string, fields: Record<string, unknown>) => logger.debug(event, fields);
  const counters = new LimitCounters();
  // The engine and the sessions report to the metrics, which read from them in turn: the metrics
  // are built after them and reached through this binding.
  let metrics: Metrics | undefined;
  const engine = new InstrumentedEngine(
    configured,
    (operation, seconds, failed) => metrics?.observeEngine(operation, seconds, failed),
    (message) => metrics?.published(message),
  );
  const sessions = new SessionStore({
    onFirstSent: (delivery) => metrics?.observeFirstSent(delivery),
    maxIntervalMs: config.intervalMs + config.maxIntervalMs,
    maxQueue: config.maxQueue,
    slowConsumer: config.slowConsumer,
    messageRate: config.maxMessageRate,
    maxSessionsPerAddress: config.maxSessionsPerAddress === 0 ? undefined : config.maxSessionsPerAddress,
    limits: counters,
    clock: options.clock,
    onFlushError: (error, session) => logger.error('flush failed', { error, session: session.publicId }),
  });
  const hub = new Hub(engine, sessions, (error, context) => logger.error('engine error', { context, error }));
  const connectionsByTransport = (): Record<string, number> => ({
    tcp: connections.size,
    websocket: webSocket?.openSockets ?? 0,
    eventsource: eventSource?.openStreams ?? 0,
    'http-stream': restSubscribe.openStreams,
    'long-polling': sessions.census(0).heldPolls,
  });
  metrics = new Metrics({ sessions, hub, engine: configured, counters, connections: connectionsByTransport });
  sessions.onClosed((session) => metrics!.sessionClosed(session.queueLength));
  const tokens = new Tokens({
    jwtSecret: config.jwtSecret,
    jwtPublicKey: config.jwtPublicKey,
    jwks: config.jwks,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    signingSecret: signingSecretFrom(config.publishKey),
  });
  const access = new ChannelAccess((token) => tokens.verify(token), tokens.verifiesApplicationTokens, config.permissions);
  const gate = createRestGate(config.publishKey, access);
  const enabled = new Set<TransportName>(config.transports);
  const bayeux = new BayeuxServer(
    { sessions, hub, engine, access, isDraining: () => closing !== undefined },
    {
      timeoutMs: config.timeoutMs,
      intervalMs: config.intervalMs,
      maxIntervalMs: config.maxIntervalMs,
      maxSessionsPerBrowser: config.maxSessionsPerBrowser,
      multiSessionIntervalMs: config.multiSessionIntervalMs,
      allowPublishWithoutSession: config.allowPublishWithoutSession,
      maxSubscriptions: config.maxSubscriptions,
      maxMessageBytes: config.maxMessageBytes,
      connectionTypes: connectionTypes(config.transports),
    },
  );
  const longPolling = new LongPollingTransport(bayeux.handleBatch, {
    maxBodyBytes: config.maxBodyBytes,
    cookieAttributes: config.cookieAttributes,
    callbackPolling: enabled.has('callback-polling'),
    onTooLarge: () => counters.hit('body_size'),
  });
  const webSocket = enabled.has('websocket')
    ? new WebSocketTransport(bayeux.handleBatch, {
        maxPayloadBytes: config.maxBodyBytes,
        maxBufferedBytes: config.maxBufferedBytes,
        pingIntervalMs: config.pingIntervalMs,
        lifecycle,
        onTooLarge: () => counters.hit('body_size'),
        messageFormats: { plain: BAYEUX_JSON, withIds: BAYEUX_JSON_WITH_ID },
      })
    : undefined;
  const eventSource = enabled.has('eventsource')
    ? new EventSourceTransport(bayeux.findSession, {
        heartbeatMs: config.heartbeatMs,
        maxBufferedBytes: config.maxBufferedBytes,
        retryMs: 1000,
        lifecycle,
        messageFormats: { plain: BAYEUX_JSON, withIds: BAYEUX_JSON_WITH_ID },
      })
    : undefined;
  const subscribePoll = new SubscribePoll(sessions, hub, engine, { timeoutMs: config.timeoutMs });
  const restSubscribe = new RestSubscribe(sessions, hub, engine, subscribePoll, gate, {
    heartbeatMs: config.heartbeatMs,
    maxBufferedBytes: config.maxBufferedBytes,
    retryMs: 2000,
    lifecycle,
  });
  const servers = new Set<Server>();
  const connections = new Set<Socket>();
  /** Connections accepted past maxConnections: their one request is answered 503. */
  const overLimit = new WeakSet<Socket | Duplex>();
  let closing: Promise<void> | undefined;
  const stats = (): HeraldStats => ({
    sessions: sessions.size,
    heldConnects: sessions.heldCount(),
    patterns: hub.patternCount,
    webSockets: webSocket?.openSockets ?? 0,
    connections: connections.size,
    limits: counters.snapshot(),
  });
  const adminGate = createAdminGate(config.adminKey);
  const staticFiles = new StaticFiles({ clientScript: config.clientScript, demo: config.demo });
  const dashboard = new Dashboard({ sessions, hub, metrics, counters, connections: connectionsByTransport, adminGate, page: (req, res, pathname) => staticFiles.serveDashboard(req, res, pathname) });
  const router = new Router({
    paths: config.paths,
    restPublish: new RestPublish(engine, hub, gate, { maxBodyBytes: config.maxBodyBytes, maxMessageBytes: config.maxMessageBytes, counters }),
    restHistory: new RestHistory(engine, gate),
    restPresence: new RestPresence(engine, gate),
    restSubscribe,
    restSign: new RestSign((grant) => tokens.sign(grant), gate),
    metrics,
    adminGate,
    dashboard,
    origins: createOriginPolicy(config.allowedOrigins),
    longPolling,
    webSocket,
    eventSource,
    logger,
    stats,
    isDraining: () => closing !== undefined,
    engineHealth: () => engine.health(),
    staticFiles,
  });
  const handle = (req: IncomingMessage, res: ServerResponse) => router.handleRequest(req, res);
  const handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => router.handleUpgrade(req, socket, head);

  // Sessions go by their public id in logs: a clientId is a credential.
  sessions.onCreated((session) => logger.debug('session opened', { session: session.publicId, address: session.address }));
  sessions.onClosed((session, reason) => logger.debug('session closed', { session: session.publicId, reason, queued: session.queueLength }));

  function attach(server: Server): void {
    const previous = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      // While draining, each connection closes after its response: the client's next request
      // opens a new one, which a load balancer sends to a node that is not going away.
      if (closing !== undefined) res.shouldKeepAlive = false;
      if (overLimit.has(req.socket)) {
        sendError(res, 503, tooManyConnections(), { 'Retry-After': '5', Connection: 'close' });
        return;
      }
      if (handle(req, res)) return;
      // Not `new URL(req.url, base)`: a target such as `//host%3C` parses as a (bad) host and throws.
      if (previous.length === 0) sendError(res, 404, `no such path: ${(req.url ?? '/').split('?')[0]!.slice(0, 200)}`);
      for (const listener of previous) listener.call(server, req, res);
    });
    const previousUpgrade = server.listeners('upgrade') as ((req: IncomingMessage, socket: Duplex, head: Buffer) => void)[];
    server.removeAllListeners('upgrade');
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (overLimit.has(req.socket)) {
        refuseUpgrade(socket, 503, tooManyConnections());
        return;
      }
      if (handleUpgrade(req, socket, head)) return;
      if (previousUpgrade.length === 0) socket.destroy();
      for (const listener of previousUpgrade) listener.call(server, req, socket, head);
    });
    server.on('connection', (socket: Socket) => admitConnection(socket));
    servers.add(server);
  }

  /**
   * Counts a new connection. One past the limit is still read, so that its request gets a 503
   * naming the limit (and the connection closes) rather than a reset the client cannot explain.
   */
  function admitConnection(socket: Socket): void {
    if (config.maxConnections > 0 && connections.size >= config.maxConnections) {
      counters.hit('connections');
      overLimit.add(socket);
      return;
    }
    connections.add(socket);
    const address = socket.remoteAddress;
    logger.debug('connection opened', { address });
    socket.once('close', () => {
      connections.delete(socket);
      logger.debug('connection closed', { address });
    });
  }

  function tooManyConnections(): string {
    return `too many connections (at most ${config.maxConnections}): try again later`;
  }

  async function listen(port = 8080, host = '127.0.0.1'): Promise<AddressInfo> {
    const server = createServer({ noDelay: true });
    attach(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  /**
   * Stops accepting connections, then tells the sessions to go — a held connect answered with
   * handshake advice, a WebSocket closed with 1001, a stream ended naming the reason — each at a
   * moment drawn at random over the drain window, so the nodes that take them over are not hit
   * all at once. Sessions keep receiving until their moment. Ends within shutdownGraceMs.
   */
  async function drain(): Promise<void> {
    const deadline = Date.now() + config.shutdownGraceMs;
    for (const server of servers) server.close();
    await atRandomMoments(config.drainWindowMs, sessions.all(), (session) => sessions.close(session, 'shutdown'));
    sessions.closeAll('shutdown');
    webSocket?.closeAll(CLOSE.goingAway, 'server shutting down');
    eventSource?.closeAll();
    restSubscribe.closeAll();
    const busy = () => router.inFlight.size > 0 || (webSocket?.openSockets ?? 0) > 0;
    while (busy() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    for (const server of servers) server.closeAllConnections();
    webSocket?.terminateAll();
    sessions.dispose();
    dashboard.close();
    await engine.close();
  }

  return {
    handle,
    attach,
    listen,
    async publish(channel, data) {
      const parsed = parseChannel(channel);
      if (parsed === undefined || parsed.wildcard !== 'none' || parsed.kind !== 'broadcast') {
        throw new HeraldError('HERALD_ERR_INVALID_CHANNEL', `cannot publish to ${JSON.stringify(channel)}: not a broadcast channel name`);
      }
      return engine.publish({ channel, data });
    },
    use: (extension) => bayeux.use(extension),
    service(pattern, handler) {
      const parsed = parseChannel(pattern);
      if (parsed === undefined || parsed.kind !== 'service') {
        throw new HeraldError('HERALD_ERR_INVALID_CHANNEL', `${JSON.stringify(pattern)} is not a /service/ channel or pattern`);
      }
      bayeux.service(pattern, handler);
    },
    get sessionCount() {
      return sessions.size;
    },
    stats,
    handleUpgrade,
    close() {
      closing ??= drain();
      return closing;
    },
  };
}

/**
 * Calls `act` on every item at a moment drawn at random over `windowMs` (all at once for 0), in
 * 50 steps: one timer per step however many items there are.
 */
async function atRandomMoments<T>(windowMs: number, items: readonly T[], act: (item: T) => void): Promise<void> {
  const steps = windowMs <= 0 ? 1 : 50;
  const buckets: T[][] = Array.from({ length: steps }, () => []);
  for (const item of items) buckets[Math.floor(Math.random() * steps)]!.push(item);
  for (let step = 0; step < steps; step++) {
    if (step > 0) await new Promise((resolve) => setTimeout(resolve, windowMs / steps));
    for (const item of buckets[step]!) act(item);
  }
}

/** The engine an option names: an instance as is, `memory`, or a Redis URL. */
function buildEngine(engine: Engine | string, config: Settings, logger: Logger, clock: Clock | undefined): Engine {
  if (typeof engine !== 'string') return engine;
  const history = { historySize: config.historySize, historyTtlMs: config.historyTtlMs };
  if (engine === 'memory') return new MemoryEngine({ ...history, clock });
  if (/^rediss?:\/\//.test(engine)) {
    return new RedisEngine({ url: engine, ...history, onError: (error, context) => logger.warn('redis', { context, error: (error as Error).message ?? String(error) }) });
  }
  throw new HeraldError('HERALD_ERR_INVALID_OPTION', 'engine must be an Engine, "memory", or a redis:// URL');
}

/** What the handshake offers. Faye's browser client calls a cross-origin long-poll by its own name. */
function connectionTypes(transports: readonly TransportName[]): string[] {
  return transports.flatMap((name) => (name === 'long-polling' ? ['long-polling', 'cross-origin-long-polling'] : [name]));
}

function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

function validate(config: Settings): void {
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
  for (const key of ['maxQueue', 'maxBodyBytes', 'maxBufferedBytes', 'maxMessageBytes', 'maxSubscriptions'] as const) {
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
