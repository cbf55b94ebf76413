/**
 * @module
 * Which transport serves a request: `/health`, `/ready`; `/metrics` and the dashboard (admin key);
 * the REST API (`/pub/…` and `/pub` (a batch), `/history/…`, `/presence/…`, `/sub/…`, `/sign`, the
 * control plane's and inspection's `/admin/…`; each asks the REST gate who may); then the Bayeux paths — origin check, drain check, CORS preflight, EventSource streams,
 * WebSocket upgrades, and long-polling (JSONP included); then the client script and demo pages.
 * Anything else is left to whoever else listens on the server.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { EventSourceTransport } from '../transports/eventsource.js';
import { destroyOnError, NO_CACHE, refuseUpgrade, sendError, sendJson, sendRefusal } from '../transports/http.js';
import type { EngineHealth } from '../core/engine.js';
import { isEngineUnavailable } from '../core/errors.js';
import { ADMIN_PREFIX } from '../rest/control.js';
import type { RestControl } from '../rest/control.js';
import type { RestHistory } from '../rest/history.js';
import { RestInspection } from '../rest/inspection.js';
import type { RestPresence } from '../rest/presence.js';
import { BATCH_PATH } from '../rest/publish.js';
import type { RestPublish } from '../rest/publish.js';
import { SIGN_PATH } from '../rest/sign.js';
import type { RestSign } from '../rest/sign.js';
import type { RestSubscribe } from '../rest/subscribe.js';
import type { LongPollingTransport } from '../transports/long-polling.js';
import type { WebSocketTransport } from '../transports/websocket.js';
import { answerPreflight, corsHeaders } from './cors.js';
import type { OriginPolicy } from './cors.js';
import type { AdminVerdict } from './auth.js';
import { Dashboard } from './dashboard.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { StaticFiles } from './static-files.js';

/** Liveness and counts, as JSON: 200 while the process serves at all (draining, or Redis away, included). */
export const HEALTH_PATH = '/health';
/** Readiness, as JSON: 200 when new clients should come here; 503 while draining or while the engine cannot serve. */
export const READY_PATH = '/ready';
/** Prometheus metrics, behind the admin key. */
export const METRICS_PATH = '/metrics';

export const PUBLISH_PREFIX = '/pub/';
export const HISTORY_PREFIX = '/history/';
export const SUBSCRIBE_PREFIX = '/sub/';
export const PRESENCE_PREFIX = '/presence/';
const REST_PREFIXES = [PUBLISH_PREFIX, HISTORY_PREFIX, SUBSCRIBE_PREFIX, PRESENCE_PREFIX, ADMIN_PREFIX];

export interface RouterParts {
  readonly paths: readonly string[];
  readonly restPublish: RestPublish;
  readonly restHistory: RestHistory;
  readonly restPresence: RestPresence;
  readonly restSubscribe: RestSubscribe;
  readonly restSign: RestSign;
  readonly restControl: RestControl;
  readonly restInspection: RestInspection;
  readonly metrics: Metrics;
  readonly adminGate: (req: IncomingMessage, query: URLSearchParams) => AdminVerdict;
  readonly dashboard: Dashboard;
  readonly origins: OriginPolicy;
  readonly longPolling: LongPollingTransport;
  readonly webSocket: WebSocketTransport | undefined;
  readonly eventSource: EventSourceTransport | undefined;
  readonly logger: Logger;
  readonly stats: () => object;
  readonly isDraining: () => boolean;
  readonly engineHealth: () => EngineHealth;
  readonly staticFiles: StaticFiles;
}

/**
 * Requests one connection may have unanswered at once (HTTP/1.1 pipelining; browsers never do it).
 * Node reads and starts every pipelined request as it arrives, so without a bound one connection
 * could keep any number waiting on a slow service or engine; past it, each is refused at once and
 * the connection closes after the answers owed before it.
 */
export const MAX_PIPELINED_REQUESTS = 16;

export class Router {
  /** Long-poll responses not yet finished: draining waits for them. */
  readonly inFlight = new Set<ServerResponse>();
  /** Herald's unanswered requests on each connection. */
  readonly #pipelined = new WeakMap<object, number>();

  constructor(private readonly parts: RouterParts) {}

  /**
   * Serves the request if it is Herald's; false (and untouched) otherwise. The one guard at the
   * request boundary: whatever a handler throws is logged and answered 500, never ends the process.
   */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    try {
      return this.#dispatch(req, res);
    } catch (error) {
      this.#failed(req, res, error);
      return true;
    }
  }

  #dispatch(req: IncomingMessage, res: ServerResponse): boolean {
    const { pathname, query } = splitTarget(req.url);
    if (pathname === HEALTH_PATH) {
      const engine = this.parts.engineHealth();
      const status = this.parts.isDraining() ? 'draining' : engine.healthy ? 'ok' : 'degraded';
      sendJson(res, 200, JSON.stringify({ status, engine, ...this.parts.stats() }), { 'Cache-Control': NO_CACHE });
      return true;
    }
    if (pathname === READY_PATH) {
      const engine = this.parts.engineHealth();
      const status = this.parts.isDraining() ? 'draining' : engine.healthy ? 'ready' : 'engine_unavailable';
      sendJson(res, status === 'ready' ? 200 : 503, JSON.stringify({ status, engine }), { 'Cache-Control': NO_CACHE });
      return true;
    }
    if (pathname === METRICS_PATH || Dashboard.owns(pathname)) {
      this.#serveAdmin(req, res, pathname, new URLSearchParams(query));
      return true;
    }
    const rest = pathname === SIGN_PATH || pathname === BATCH_PATH || REST_PREFIXES.some((prefix) => pathname.startsWith(prefix));
    const path = rest ? undefined : this.#bayeuxPath(pathname);
    if (!rest && path === undefined) return this.parts.staticFiles.serve(req, res, pathname);
    req.socket.setNoDelay(true);
    if (!this.#admitPipelined(req, res)) {
      sendError(res, 429, `more than ${MAX_PIPELINED_REQUESTS} requests in flight on one connection: wait for the answers, or open another`, { ...corsHeaders(req), Connection: 'close' });
      return true;
    }
    const refusal = this.#refusal(req, rest && pathname.startsWith(SUBSCRIBE_PREFIX));
    if (refusal !== undefined) {
      sendError(res, refusal.status, refusal.message, refusal.status === 503 ? { ...corsHeaders(req), Connection: 'close' } : {});
      return true;
    }
    const cors = corsHeaders(req);
    if (req.method === 'OPTIONS') {
      answerPreflight(req, res);
    } else if (rest) {
      this.#serveRest(req, res, pathname, query, cors);
    } else if (EventSourceTransport.wants(req)) {
      if (this.parts.eventSource === undefined) sendError(res, 400, 'eventsource is not enabled on this server', cors);
      else this.parts.eventSource.serve(req, res, pathname.slice(path!.length + 1), cors);
    } else {
      this.#track(req, res, this.parts.longPolling.serve(req, res, new URLSearchParams(query), cors));
    }
    return true;
  }

  #serveRest(req: IncomingMessage, res: ServerResponse, pathname: string, query: string, cors: Record<string, string>): void {
    if (pathname.startsWith(SUBSCRIBE_PREFIX)) {
      // Draining ends streams and answers polls by closing their sessions; then these finish.
      this.#track(req, res, this.parts.restSubscribe.serve(req, res, pathname.slice(SUBSCRIBE_PREFIX.length), new URLSearchParams(query), cors));
      return;
    }
    if (pathname.startsWith(PRESENCE_PREFIX)) {
      this.#track(req, res, this.parts.restPresence.serve(req, res, pathname.slice(PRESENCE_PREFIX.length), new URLSearchParams(query), cors));
      return;
    }
    if (pathname.startsWith(HISTORY_PREFIX)) {
      this.#track(req, res, this.parts.restHistory.serve(req, res, pathname.slice(HISTORY_PREFIX.length), new URLSearchParams(query), cors));
      return;
    }
    if (pathname === SIGN_PATH) {
      this.#track(req, res, this.parts.restSign.serve(req, res, new URLSearchParams(query), cors));
      return;
    }
    if (pathname.startsWith(ADMIN_PREFIX)) {
      const admin = RestInspection.owns(pathname) ? this.parts.restInspection : this.parts.restControl;
      this.#track(req, res, admin.serve(req, res, pathname, new URLSearchParams(query), cors));
      return;
    }
    if (pathname === BATCH_PATH) {
      this.#track(req, res, this.parts.restPublish.serveBatch(req, res, new URLSearchParams(query), cors));
      return;
    }
    this.#track(req, res, this.parts.restPublish.serve(req, res, pathname.slice(PUBLISH_PREFIX.length), new URLSearchParams(query), cors));
  }

  /** `/metrics` and the dashboard: operators only. */
  #serveAdmin(req: IncomingMessage, res: ServerResponse, pathname: string, query: URLSearchParams): void {
    if (pathname !== METRICS_PATH) {
      this.parts.dashboard.serve(req, res, pathname, query);
      return;
    }
    const verdict = this.parts.adminGate(req, query);
    if (!verdict.ok) {
      sendRefusal(res, verdict);
      return;
    }
    res.on('close', () => this.inFlight.delete(res));
    this.#track(req, res, this.parts.metrics.render().then((text) => {
      res.writeHead(200, { 'Content-Type': this.parts.metrics.contentType, 'Cache-Control': NO_CACHE, 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    }));
  }

  /** Counts the request against its connection's pipelining bound until its response closes; false past the bound. */
  #admitPipelined(req: IncomingMessage, res: ServerResponse): boolean {
    const socket = req.socket;
    const unanswered = this.#pipelined.get(socket) ?? 0;
    if (unanswered >= MAX_PIPELINED_REQUESTS) return false;
    this.#pipelined.set(socket, unanswered + 1);
    // One listener (`on`: 'close' comes once, and `once` wraps) ends both counts: this one, and in flight (#track).
    res.on('close', () => {
      this.inFlight.delete(res);
      this.#pipelined.set(socket, (this.#pipelined.get(socket) ?? 1) - 1);
    });
    return true;
  }

  /**
   * Counts a request as in flight until its response closes (the listener #admitPipelined added
   * ends it), and turns a failure into a 503 when the engine is out of reach (worth retrying), a
   * 504 when it may have done it without a word back (a publish that may be stored), else a 500.
   */
  #track(req: IncomingMessage, res: ServerResponse, serving: Promise<void>): void {
    this.inFlight.add(res);
    serving.catch((error: unknown) => this.#failed(req, res, error));
  }

  #failed(req: IncomingMessage, res: ServerResponse, error: unknown): void {
    if (isEngineUnavailable(error)) {
      this.parts.logger.warn('engine unavailable', { error: error.message, method: req.method, url: req.url });
      const [status, what] = error.outcomeUnknown ? [504, 'no answer from the engine (it may have been done)'] : [503, 'engine unavailable'];
      if (!res.headersSent) sendError(res, status, `${what}: ${error.message}`, { ...corsHeaders(req), 'Retry-After': '1' });
      else res.destroy();
      return;
    }
    this.parts.logger.error('request failed', { error, method: req.method, url: req.url });
    if (!res.headersSent) sendError(res, 500, 'internal error');
    else res.destroy();
  }

  /** Takes a WebSocket upgrade if it is for a Bayeux path; false (socket untouched) otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    try {
      return this.#dispatchUpgrade(req, socket, head);
    } catch (error) {
      this.parts.logger.error('upgrade failed', { error, url: req.url });
      socket.destroy();
      return true;
    }
  }

  #dispatchUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const { pathname, query } = splitTarget(req.url);
    const rest = pathname.startsWith(SUBSCRIBE_PREFIX);
    if (!rest && this.#bayeuxPath(pathname) === undefined) return false;
    // A shared function, not a closure: this one would keep the request for the socket's life.
    socket.on('error', destroyOnError);
    const webSocket = this.parts.webSocket;
    if (webSocket === undefined) {
      refuseUpgrade(socket, 400, 'websocket is not enabled on this server');
      return true;
    }
    const refusal = this.#refusal(req, true);
    if (refusal !== undefined) {
      refuseUpgrade(socket, refusal.status, refusal.message);
      return true;
    }
    if (!rest) {
      webSocket.upgrade(req, socket, head);
      return true;
    }
    this.parts.restSubscribe.upgrade(req, socket, head, pathname.slice(SUBSCRIBE_PREFIX.length), new URLSearchParams(query), webSocket).catch((error: unknown) => {
      this.parts.logger.error('upgrade failed', { error, url: req.url });
      socket.destroy();
    });
    return true;
  }

  #bayeuxPath(pathname: string): string | undefined {
    return this.parts.paths.find((path) => pathname === path || pathname.startsWith(path + '/'));
  }

  /**
   * Why a request must be refused before any transport sees it, if it must. While draining, what
   * would open something new here (a WebSocket, a REST subscription) is sent elsewhere; requests
   * of existing sessions are still served until each session is told to go (Bayeux refuses new
   * handshakes itself).
   */
  #refusal(req: IncomingMessage, opensNew: boolean): { status: 403 | 503; message: string } | undefined {
    // A hybi-08 WebSocket client (version 8, which the upgrade accepts) names its page's origin in
    // Sec-WebSocket-Origin instead (as `ws` read it): checked the same, or such a page would pass.
    const origin = req.headers.origin ?? headerValue(req.headers['sec-websocket-origin']);
    if (origin !== undefined && !this.parts.origins.allows(origin, req)) {
      return { status: 403, message: `origin ${JSON.stringify(origin.slice(0, 200))} is not allowed` };
    }
    if (opensNew && this.parts.isDraining()) return { status: 503, message: 'server is shutting down: connect again (to another node)' };
    return undefined;
  }
}

/** Path and query of a request target, without the cost of a full URL parse on every request. */
function splitTarget(target = '/'): { pathname: string; query: string } {
  const mark = target.indexOf('?');
  return mark < 0 ? { pathname: target, query: '' } : { pathname: target.slice(0, mark), query: target.slice(mark + 1) };
}

/** A header Node may hand over as a list (one it does not know to join): its first value. */
function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
