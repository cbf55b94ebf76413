/**
 * @module
 * The live dashboard at `/dashboard` (behind the admin key): connections and messages per second
 * over the last minutes, busiest channels, transports in use, slow consumers. The page
 * (web/dashboard.html) polls `/dashboard/stats`; the numbers come from one sample per second,
 * taken only while someone is watching (a census walks every session).
 *
 * Opening `/dashboard?key=<admin key>` stores the key in an HttpOnly cookie for this path and
 * redirects to the bare URL, so the key leaves the address bar and the page needs no script access to it.
 *
 * The page links to the cluster's inspection — `/dashboard/channels`, `/dashboard/nodes`,
 * `/dashboard/users/{sub}/sessions` — which answer as `/admin/channels`, `/admin/nodes` and
 * `/admin/users/{sub}/sessions` do, for the admin key (whose cookie is sent to this path only).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LimitCounters } from '../core/limits.js';
import type { Hub } from '../core/hub.js';
import type { SessionStore } from '../core/session-store.js';
import { isTls, NO_CACHE, sendError, sendJson, sendRefusal } from '../transports/http.js';
import { ADMIN_COOKIE } from './auth.js';
import type { AdminVerdict } from './auth.js';
import type { Metrics } from './metrics.js';

export const DASHBOARD_PATH = '/dashboard';
export const DASHBOARD_STATS_PATH = '/dashboard/stats';
/** Inspection under the dashboard (after `/dashboard/`): a path, or a prefix when it ends with `/`. */
const INSPECTION_PATHS = ['channels', 'nodes', 'users/'];

/** Samples kept: five minutes at one a second. */
const WINDOW = 300;
/** Stop sampling this long after the last look. */
const IDLE_MS = 60_000;

export interface Sample {
  readonly at: number;
  readonly connections: Record<string, number>;
  readonly sessions: number;
  /** Per second, over the second before `at`. */
  readonly published: number;
  readonly delivered: number;
  readonly refused: number;
  readonly busiest: readonly { channel: string; messages: number }[];
}

export interface DashboardSources {
  readonly sessions: SessionStore;
  readonly hub: Hub;
  readonly metrics: Metrics;
  readonly counters: LimitCounters;
  readonly connections: () => Record<string, number>;
  readonly adminGate: (req: IncomingMessage, query: URLSearchParams) => AdminVerdict;
  /** Answers an inspection (`/admin/…` path) for someone the admin gate let in. */
  readonly inspect: (req: IncomingMessage, res: ServerResponse, adminPath: string, query: URLSearchParams) => Promise<void>;
  /** Serves a page from web/ (the static file table). */
  readonly page: (req: IncomingMessage, res: ServerResponse, pathname: string) => boolean;
}

export class Dashboard {
  readonly #samples: Sample[] = [];
  #timer: NodeJS.Timeout | undefined;
  #lastLook = 0;
  #last = { at: 0, published: 0, delivered: 0, refused: 0 };

  constructor(private readonly sources: DashboardSources) {}

  /** True when the path is the dashboard's: the page, and everything under it (its cookie's path). */
  static owns(pathname: string): boolean {
    return pathname === DASHBOARD_PATH || pathname.startsWith(`${DASHBOARD_PATH}/`);
  }

  serve(req: IncomingMessage, res: ServerResponse, pathname: string, query: URLSearchParams): void {
    const verdict = this.sources.adminGate(req, query);
    if (!verdict.ok) {
      sendRefusal(res, verdict);
      return;
    }
    const key = query.get('key');
    if (pathname === DASHBOARD_PATH && key !== null) {
      const secure = isTls(req) ? '; Secure' : '';
      res.writeHead(303, {
        Location: DASHBOARD_PATH,
        'Set-Cookie': `${ADMIN_COOKIE}=${encodeURIComponent(key)}; Path=${DASHBOARD_PATH}; HttpOnly; SameSite=Strict${secure}`,
        'Cache-Control': NO_CACHE,
        'Content-Length': '0',
      });
      res.end();
      return;
    }
    if (pathname === DASHBOARD_STATS_PATH) {
      sendJson(res, 200, JSON.stringify(this.stats()), { 'Cache-Control': NO_CACHE });
      return;
    }
    const inspection = INSPECTION_PATHS.find((path) => pathname === `${DASHBOARD_PATH}/${path}` || (path.endsWith('/') && pathname.startsWith(`${DASHBOARD_PATH}/${path}`)));
    if (inspection !== undefined) {
      this.sources.inspect(req, res, `/admin/${pathname.slice(DASHBOARD_PATH.length + 1)}`, query).catch((error: Error) => {
        // The other nodes are asked through the engine, which may be out of reach: worth a retry.
        if (!res.headersSent) sendError(res, 503, `inspection failed: ${error.message}`, { 'Retry-After': '1' });
      });
      return;
    }
    if (!this.sources.page(req, res, pathname)) sendError(res, 404, 'the dashboard page is missing from this install');
  }

  /** What the page shows: the samples, and the state now. */
  stats(): object {
    this.#lastLook = Date.now();
    if (this.#timer === undefined) {
      this.#sample();
      this.#timer = setInterval(() => this.#tick(), 1000);
      this.#timer.unref();
    }
    const census = this.sources.sessions.census();
    const busiest = new Map<string, number>();
    for (const sample of this.#samples.slice(-60)) {
      for (const { channel, messages } of sample.busiest) busiest.set(channel, (busiest.get(channel) ?? 0) + messages);
    }
    const limits = this.sources.counters.snapshot();
    return {
      now: Date.now(),
      // Each sample's busiest channels feed busiestChannels only: sent with every sample they
      // would repeat up to 3,000 channel names (of up to 1 KiB) in every poll of every open page.
      samples: this.#samples.map(({ busiest: _busiest, ...sample }) => sample),
      connections: this.sources.connections(),
      sessions: census.sessions,
      subscriptions: census.subscriptions,
      queued: census.queued,
      publishedTotal: this.sources.metrics.publishedCount,
      deliveredTotal: this.sources.hub.deliveriesQueued,
      busiestChannels: [...busiest].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([channel, messages]) => ({ channel, messages })),
      slowConsumers: census.deepestQueues.filter((session) => session.queued > 0),
      slowConsumersClosed: limits.queue_closed,
      // Their WebSocket or stream cut for unsent bytes: the session may live on (a later connect takes what waits).
      slowConsumersCut: limits.send_buffer,
      slowConsumerDrops: limits.queue_dropped,
      limits,
    };
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    if (Date.now() - this.#lastLook > IDLE_MS) {
      this.close();
      return;
    }
    this.#sample();
  }

  #sample(): void {
    const { hub, metrics, counters } = this.sources;
    const now = Date.now();
    const published = metrics.publishedCount;
    const delivered = hub.deliveriesQueued;
    const refused = Object.entries(counters.snapshot()).reduce((sum, [name, count]) => (name.startsWith('queue_') ? sum : sum + count), 0);
    const seconds = this.#last.at === 0 ? 1 : Math.max(0.001, (now - this.#last.at) / 1000);
    const first = this.#last.at === 0;
    this.#samples.push({
      at: now,
      connections: this.sources.connections(),
      sessions: this.sources.sessions.size,
      published: first ? 0 : (published - this.#last.published) / seconds,
      delivered: first ? 0 : (delivered - this.#last.delivered) / seconds,
      refused: first ? 0 : (refused - this.#last.refused) / seconds,
      busiest: metrics.takeBusiestChannels(),
    });
    if (this.#samples.length > WINDOW) this.#samples.shift();
    this.#last = { at: now, published, delivered, refused };
  }
}
