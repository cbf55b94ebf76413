/**
 * @module
 * Wiring: builds the engine, sessions, hub, Bayeux front door and transports from one options
 * object, and serves them on any `http.Server`. The only place that knows every layer.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { BayeuxServer } from '../bayeux/bayeux-server.js';
import type { Extension } from '../bayeux/extensions.js';
import { BAYEUX_JSON, BAYEUX_JSON_WITH_ID } from '../bayeux/message.js';
import type { ServiceHandler } from '../bayeux/services.js';
import { ChannelAccess } from '../core/access.js';
import type { Permissions } from '../core/access.js';
import { parseChannel } from '../core/channel.js';
import { systemClock } from '../core/clock.js';
import type { Clock } from '../core/clock.js';
import { ControlPlane } from '../core/control-plane.js';
import type { Engine } from '../core/engine.js';
import { HeraldError } from '../core/errors.js';
import { Hub } from '../core/hub.js';
import { Inspector } from '../core/inspection.js';
import { AddressRates, LimitCounters } from '../core/limits.js';
import { MemoryBudget } from '../core/memory-budget.js';
import type { MemoryUsage } from '../core/memory-budget.js';
import type { LimitName } from '../core/limits.js';
import { MemoryEngine } from '../core/memory-engine.js';
import { Publisher } from '../core/publisher.js';
import { SessionStore } from '../core/session-store.js';
import { RedisEngine } from '../engines/redis/redis-engine.js';
import { RestControl } from '../rest/control.js';
import { RestHistory } from '../rest/history.js';
import { RestInspection } from '../rest/inspection.js';
import { RestPresence } from '../rest/presence.js';
import { RestPublish } from '../rest/publish.js';
import { RestSign } from '../rest/sign.js';
import { SubscribePoll } from '../rest/subscribe-poll.js';
import { RestSubscribe } from '../rest/subscribe.js';
import { EventSourceTransport } from '../transports/eventsource.js';
import { refuseUpgrade, sendError, setClientAddress } from '../transports/http.js';
import { LongPollingTransport } from '../transports/long-polling.js';
import { WebSocketTransport } from '../transports/websocket.js';
import { createAdminGate, createRestGate } from './auth.js';
import { clientAddressResolver } from './client-address.js';
import { createOriginPolicy } from './cors.js';
import { Dashboard } from './dashboard.js';
import { createDecisionHooks } from './decision-hooks.js';
import { InstrumentedEngine } from './instrumented-engine.js';
import type { Logger } from './logger.js';
import { logsDebug, redactingLogger, silentLogger } from './logger.js';
import { answerClientError, LISTEN_BACKLOG } from './listen.js';
import { Metrics } from './metrics.js';
import type { HeraldEventName, HeraldEvents } from './herald-events.js';
import { sendPiggybacked } from './piggyback.js';
import { PRESENCE_SERVICE, wirePresence } from './presence.js';
import { connectionTypes, definedOnly, HERALD_DEFAULTS, validate } from './options.js';
import type { HeraldOptions, Settings, TransportName } from './options.js';
import { Router } from './router.js';
import { createServerApi } from './server-api.js';
import type { ServerApi } from './server-api.js';
import { StaticFiles } from './static-files.js';
import { signingSecretFrom, Tokens } from './tokens.js';

export { HERALD_DEFAULTS, TRANSPORT_NAMES } from './options.js';
export type { HeraldOptions, TransportName } from './options.js';
export type { BatchItem, BatchResult, ChannelsPage, LiveChannel, NodeTotals, SessionSummary } from './server-api.js';
export type { HeraldEventName, HeraldEvents, MemberEvent, SessionCloseEvent, SessionEvent, SubscriptionEvent, UserEvent } from './herald-events.js';

export interface HeraldStats {
  readonly sessions: number;
  readonly heldConnects: number;
  readonly patterns: number;
  readonly webSockets: number;
  readonly connections: number;
  /** How often each limit refused something (or, for slow consumers and the memory budget, dropped or closed). */
  readonly limits: Record<LimitName, number>;
  /** What history and session queues hold against the memory budget, in bytes. */
  readonly memory: MemoryUsage;
}

/** A Herald server: it serves requests, and (ServerApi) publishes, acts and inspects from code. */
export interface Herald extends ServerApi {
  /** Serves the request if it is Herald's; false (and untouched) otherwise. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** Takes a WebSocket upgrade if it is for a Bayeux path; false (socket untouched) otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Serves Herald's paths on an existing server; its other requests go to the listeners it had. */
  attach(server: Server): void;
  /** Starts a server of its own. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** Adds a Bayeux extension (incoming/outgoing hooks). */
  use(extension: Extension): void;
  /** Answers messages published on a `/service/**` channel or pattern. */
  service(pattern: string, handler: ServiceHandler): void;
  /**
   * Sends `body` as the JSON reply to one of the application's own requests (Node http or
   * Express; the status is `res.statusCode`), carrying the messages queued for the browser's
   * Bayeux session when the request came from the Herald client's `herald.fetch()` and that
   * session is between polls (piggyback.ts). Other callers get exactly `body`.
   * @example app.post('/validate', (req, res) => herald.piggyback(req, res, { ok: check(req.body) }));
   */
  piggyback(req: IncomingMessage, res: ServerResponse, body: unknown): void;
  /**
   * Listens to sessions opening and closing, subscriptions, and members joining and leaving
   * channels with join/leave events (herald-events.ts); returns a function that stops listening.
   * @example herald.on('leave', ({ channel, subject }) => audit.log(`${subject} left ${channel}`));
   */
  on<K extends HeraldEventName>(event: K, listener: HeraldEvents[K]): () => void;
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
  const logger = options.logger === undefined ? silentLogger : redactingLogger(options.logger);
  validate(config);
  const counters = new LimitCounters();
  const memory = new MemoryBudget(config.memoryBudgetBytes, counters);
  const configured = buildEngine(options.engine ?? 'memory', config, logger, options.clock, memory);
  // Per-connection debug lines cost their fields on every connection: none are built when they go nowhere.
  const debugging = logsDebug(logger);
  const lifecycle = debugging ? (event: string, fields: Record<string, unknown>) => logger.debug(event, fields) : undefined;
  const clock = options.clock ?? systemClock;
  // Publishes without a session have no bucket of their own: their address has one, at the same rate.
  const addressRates = new AddressRates(config.maxMessageRate, () => clock.now(), counters);
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
    memoryBudget: memory,
    writeDelayMs: config.writeDelayMs,
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
  metrics = new Metrics({ sessions, hub, engine: configured, counters, memory, connections: connectionsByTransport });
  sessions.onClosed((session) => metrics!.sessionClosed(session.queueLength));
  const tokens = new Tokens({
    jwtSecret: config.jwtSecret,
    jwtPublicKey: config.jwtPublicKey,
    jwks: config.jwks,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    signingSecret: signingSecretFrom(config.publishKey),
  });
  const publisher = new Publisher(engine, hub, { maxMessageBytes: config.maxMessageBytes, idempotencyWindowMs: config.idempotencyWindowMs, counters });
  // Every token use, at every door, is screened against the revocations the node knows.
  const control = new ControlPlane(engine, sessions, clock, signingSecretFrom(config.publishKey), (error, context) => logger.error('control error', { context, error }));
  const inspector = new Inspector(engine, sessions, { connections: connectionsByTransport, showAddresses: config.inspectAddresses });
  const access = new ChannelAccess(async (token) => control.screen(await tokens.verify(token)), tokens.verifiesApplicationTokens, withDemoRules(config.permissions, config.demo));
  const hooks = createDecisionHooks(config, metrics.registry, logger);
  const gate = createRestGate(config.publishKey, access, hooks);
  const presence = wirePresence({ engine, hub, sessions, clock, access, config, logger, webhookCounters: metrics.webhooks, publisher });
  const enabled = new Set<TransportName>(config.transports);
  const bayeux = new BayeuxServer(
    { sessions, hub, engine, publisher, access, hooks, isDraining: () => closing !== undefined, clock: options.clock, addressRates, control },
    {
      timeoutMs: config.timeoutMs,
      intervalMs: config.intervalMs,
      maxIntervalMs: config.maxIntervalMs,
      maxSessionsPerBrowser: config.maxSessionsPerBrowser,
      multiSessionIntervalMs: config.multiSessionIntervalMs,
      allowPublishWithoutSession: config.allowPublishWithoutSession,
      maxSubscriptions: config.maxSubscriptions,
      connectionTypes: connectionTypes(config.transports),
    },
  );
  bayeux.service(PRESENCE_SERVICE, presence.service);
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
  const subscribePoll = new SubscribePoll(sessions, hub, engine, { timeoutMs: config.timeoutMs, maxQueue: config.maxQueue });
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
    memory: memory.usage(),
  });
  const adminGate = createAdminGate(config.adminKey);
  const staticFiles = new StaticFiles({ clientScript: config.clientScript, demo: config.demo });
  const restInspection = new RestInspection(inspector, gate);
  const dashboard = new Dashboard({
    sessions,
    hub,
    metrics,
    counters,
    connections: connectionsByTransport,
    adminGate,
    inspect: (req, res, adminPath, query) => restInspection.answer(req, res, adminPath, query, {}),
    page: (req, res, pathname) => staticFiles.serveDashboard(req, res, pathname),
  });
  const router = new Router({
    paths: config.paths,
    restPublish: new RestPublish(engine, publisher, gate, { maxBodyBytes: config.maxBodyBytes, maxBatchMessages: config.maxBatchMessages, counters, addressRates }),
    restHistory: new RestHistory(engine, gate),
    restPresence: new RestPresence(engine, gate),
    restSubscribe,
    restSign: new RestSign((grant) => tokens.sign(grant), gate),
    restControl: new RestControl(control, gate, clock),
    restInspection,
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
  // Who each request is from (behind a trusted proxy, the client), found when a handler asks.
  const addressOf = clientAddressResolver({ trustedProxies: config.trustedProxies });
  const resolveAddress = (req: IncomingMessage) => addressOf(req.socket.remoteAddress, req.headers);
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    setClientAddress(req, resolveAddress);
    return router.handleRequest(req, res);
  };
  const handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    setClientAddress(req, resolveAddress);
    return router.handleUpgrade(req, socket, head);
  };

  // Sessions go by their public id in logs: a clientId is a credential.
  if (debugging) {
    sessions.onCreated((session) => logger.debug('session opened', { session: session.publicId, address: session.address }));
    sessions.onClosed((session, reason) => logger.debug('session closed', { session: session.publicId, reason, queued: session.queueLength }));
  }

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
    // The peer: before any request is read, a proxy's forwarding headers are not known yet.
    if (debugging) logger.debug('connection opened', { peer: socket.remoteAddress });
    // One listener shared by every connection ('close' comes once): no closure held per connection.
    socket.on('close', forgetConnection);
  }

  function forgetConnection(this: Socket): void {
    connections.delete(this);
    // The address read when it opened is kept by the socket.
    if (debugging) logger.debug('connection closed', { peer: this.remoteAddress });
  }

  function tooManyConnections(): string {
    return `too many connections (at most ${config.maxConnections}): try again later`;
  }

  async function listen(port = 8080, host = '127.0.0.1'): Promise<AddressInfo> {
    const timeoutMs = config.requestTimeoutMs;
    // Node checks these timeouts only every connectionsCheckingInterval (30 s by default).
    const server = createServer({ noDelay: true, requestTimeout: timeoutMs, headersTimeout: timeoutMs, connectionsCheckingInterval: Math.min(1000, Math.max(25, timeoutMs / 4)) });
    server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => answerClientError(error, socket, counters));
    attach(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
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
    // Node closes its idle connections on close; these are the ones it lent to held long-polls.
    longPolling.held.closeIdle();
    await atRandomMoments(config.drainWindowMs, sessions.all(), (session) => sessions.close(session, 'shutdown'));
    sessions.closeAll('shutdown');
    webSocket?.closeAll('shutdown');
    eventSource?.closeAll();
    restSubscribe.closeAll();
    const busy = () => router.inFlight.size > 0 || longPolling.held.size > 0 || (webSocket?.openSockets ?? 0) > 0 || (eventSource?.openStreams ?? 0) > 0 || restSubscribe.openStreams > 0;
    while (busy() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    for (const server of servers) server.closeAllConnections();
    longPolling.held.destroyAll();
    webSocket?.terminateAll();
    eventSource?.destroyAll();
    restSubscribe.destroyAll();
    sessions.dispose();
    dashboard.close();
    await presence.close();
    await engine.close();
  }

  return {
    handle,
    attach,
    listen,
    ...createServerApi({ publisher, control, inspector, clock, maxBatchMessages: config.maxBatchMessages }),
    use: (extension) => bayeux.use(extension),
    piggyback: (req, res, body) => sendPiggybacked(req, res, body, bayeux.piggyback),
    on: presence.on,
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
function buildEngine(engine: Engine | string, config: Settings, logger: Logger, clock: Clock | undefined, memoryBudget: MemoryBudget): Engine {
  if (typeof engine !== 'string') return engine;
  const history = { historySize: config.historySize, historyTtlMs: config.historyTtlMs };
  // Redis keeps its history out of this process: only queues count against the budget then.
  if (engine === 'memory') return new MemoryEngine({ ...history, clock, memoryBudget });
  if (/^rediss?:\/\//.test(engine)) {
    return new RedisEngine({ url: engine, ...history, onError: (error, context) => logger.warn('redis', { context, error: (error as Error).message ?? String(error) }) });
  }
  throw new HeraldError('HERALD_ERR_INVALID_OPTION', 'engine must be an Engine, "memory", or a redis:// URL');
}

/**
 * The demo chat's rooms (`/chat/<room>`) have join/leave events: its "who is here" is real
 * presence. Appended last, and a rule that only says `presence` decides no access: any rule of
 * the operator's covering `/chat/**` first (`"presence": "off"` too) wins.
 */
function withDemoRules(permissions: Permissions | undefined, demo: boolean): Permissions | undefined {
  if (!demo) return permissions;
  return { ...permissions, channels: [...(permissions?.channels ?? []), { pattern: '/chat/**', presence: 'events' }] };
}
