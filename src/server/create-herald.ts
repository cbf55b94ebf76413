/**
 * @module
 * Wiring: builds the engine, sessions, hub, Bayeux front door and transports from one options
 * object, and serves them on any `http.Server`. The only place that knows every layer.
 * Its parts: the engine named (engine-option.ts), the transports (transports.ts), the HTTP
 * servers and their connections (http-servers.ts), and how the node goes away (drain.ts).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { BayeuxServer } from '../bayeux/bayeux-server.js';
import type { Extension } from '../bayeux/extensions.js';
import type { ServiceHandler } from '../bayeux/services.js';
import { ChannelAccess } from '../core/access.js';
import type { Permissions } from '../core/access.js';
import { parseChannel } from '../core/channel.js';
import { systemClock } from '../core/clock.js';
import { ControlPlane } from '../core/control-plane.js';
import { HeraldError } from '../core/errors.js';
import { Hub } from '../core/hub.js';
import { Inspector } from '../core/inspection.js';
import { AddressRates, LimitCounters } from '../core/limits.js';
import { MemoryBudget } from '../core/memory-budget.js';
import type { MemoryUsage } from '../core/memory-budget.js';
import type { LimitName } from '../core/limits.js';
import { Publisher } from '../core/publisher.js';
import { SessionStore } from '../core/session-store.js';
import { RestControl } from '../rest/control.js';
import { RestHistory } from '../rest/history.js';
import { RestInspection } from '../rest/inspection.js';
import { RestPresence } from '../rest/presence.js';
import { RestPublish } from '../rest/publish.js';
import { RestSign } from '../rest/sign.js';
import { setClientAddress } from '../transports/http.js';
import { createAdminGate, createRestGate } from './auth.js';
import { clientAddressResolver } from './client-address.js';
import { createOriginPolicy } from './cors.js';
import { Dashboard } from './dashboard.js';
import { createDecisionHooks } from './decision-hooks.js';
import { drain } from './drain.js';
import { buildEngine } from './engine-option.js';
import { createHttpServers } from './http-servers.js';
import { InstrumentedEngine } from './instrumented-engine.js';
import { logsDebug, redactingLogger, silentLogger } from './logger.js';
import { Metrics } from './metrics.js';
import type { HeraldEventName, HeraldEvents } from './herald-events.js';
import { sendPiggybacked } from './piggyback.js';
import { PRESENCE_SERVICE, wirePresence } from './presence.js';
import { connectionTypes, definedOnly, HERALD_DEFAULTS, validate } from './options.js';
import type { HeraldOptions, Settings } from './options.js';
import { Router } from './router.js';
import { createServerApi } from './server-api.js';
import type { ServerApi } from './server-api.js';
import { StaticFiles } from './static-files.js';
import { signingSecretFrom, Tokens } from './tokens.js';
import { wireTransports } from './transports.js';

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
  // Transports and servers are made further down; these counts are read only once they are.
  const connectionsByTransport = (): Record<string, number> => ({ tcp: http.connectionCount, ...transports.openByTransport() });
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
  let closing: Promise<void> | undefined;
  const isDraining = () => closing !== undefined;
  const bayeux = new BayeuxServer(
    { sessions, hub, engine, publisher, access, hooks, isDraining, clock: options.clock, addressRates, control },
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
  const transports = wireTransports({ bayeux, sessions, hub, engine, gate, counters, config, lifecycle });
  const { longPolling, webSocket, eventSource, restSubscribe } = transports;
  const stats = (): HeraldStats => ({
    sessions: sessions.size,
    heldConnects: sessions.heldCount(),
    patterns: hub.patternCount,
    webSockets: webSocket?.openSockets ?? 0,
    connections: http.connectionCount,
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
    isDraining,
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
  const http = createHttpServers({ maxConnections: config.maxConnections, requestTimeoutMs: config.requestTimeoutMs, counters, logger, debugging, handle, handleUpgrade, isDraining });

  // Sessions go by their public id in logs: a clientId is a credential.
  if (debugging) {
    sessions.onCreated((session) => logger.debug('session opened', { session: session.publicId, address: session.address }));
    sessions.onClosed((session, reason) => logger.debug('session closed', { session: session.publicId, reason, queued: session.queueLength }));
  }

  return {
    handle,
    attach: http.attach,
    listen: http.listen,
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
      closing ??= drain({ shutdownGraceMs: config.shutdownGraceMs, drainWindowMs: config.drainWindowMs, http, transports, router, sessions, dashboard, presence, engine });
      return closing;
    },
  };
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
