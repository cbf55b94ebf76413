/**
 * @module
 * How a Herald node goes away (herald.close()): without sending every client elsewhere at once.
 */
import type { Engine } from '../core/engine.js';
import type { SessionStore } from '../core/session-store.js';
import type { Dashboard } from './dashboard.js';
import type { HttpServers } from './http-servers.js';
import type { Router } from './router.js';
import type { Transports } from './transports.js';

export interface DrainParts {
  readonly shutdownGraceMs: number;
  readonly drainWindowMs: number;
  readonly http: HttpServers;
  readonly transports: Transports;
  readonly router: Router;
  readonly sessions: SessionStore;
  readonly dashboard: Dashboard;
  readonly presence: { close(): Promise<void> };
  readonly engine: Engine;
}

/**
 * Stops accepting connections, then tells the sessions to go — a held connect answered with
 * handshake advice, a WebSocket closed with 1001, a stream ended naming the reason — each at a
 * moment drawn at random over the drain window, so the nodes that take them over are not hit
 * all at once. Sessions keep receiving until their moment. Ends within shutdownGraceMs.
 */
export async function drain({ shutdownGraceMs, drainWindowMs, http, transports, router, sessions, dashboard, presence, engine }: DrainParts): Promise<void> {
  const deadline = Date.now() + shutdownGraceMs;
  http.stopAccepting();
  // Node closes its idle connections on close; these are the ones it lent to held long-polls.
  transports.longPolling.held.closeIdle();
  await atRandomMoments(drainWindowMs, sessions.all(), (session) => sessions.close(session, 'shutdown'));
  sessions.closeAll('shutdown');
  transports.closeAll();
  const busy = () => router.inFlight.size > 0 || transports.busy();
  while (busy() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  http.closeAllConnections();
  transports.destroyAll();
  sessions.dispose();
  dashboard.close();
  await presence.close();
  await engine.close();
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
