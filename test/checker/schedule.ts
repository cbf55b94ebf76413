/**
 * @module
 * The seeded parts of a checker run: a small PRNG, and the fault schedule drawn from it, so a
 * seed replays the same faults at the same moments. Pure.
 */

/** mulberry32: a tiny PRNG with a 32-bit seed, good enough to draw faults and rates. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * What the checker can do to a run. One node: the first five (proxy faults, tokens, sessions
 * ended elsewhere). Three nodes on Redis: all of them. Each is undone (node restarted, Redis back, reader resumed) before the next starts.
 */
export const FAULT_KINDS = [
  'cut-all', // every client connection through the proxies, at the TCP level
  'cut-some', // a random share of them
  'stall', // readers stop reading for a while (slow consumers)
  'token-expiry', // clients' short-lived JWTs run out; they must come back with fresh ones
  'end-sessions', // a /meta/disconnect for some CometD and Faye clients' sessions, sent by someone else
  'kill-node', // kill -9 of one node, started again after a while
  'drain-node', // SIGTERM: the node drains (tells clients to reconnect elsewhere), started again
  'cut-pubsub', // CLIENT KILL TYPE pubsub, again and again for a while: every node loses its Redis subscription
  'redis-restart-data', // Redis saves, stops and starts again with its data
  'redis-restart-empty', // Redis is killed and starts again empty, its clock behind the ids it issued (XSETID ahead first)
  'redis-pause', // CLIENT PAUSE: Redis answers nothing for a while
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const ONE_NODE_FAULTS: readonly FaultKind[] = ['cut-all', 'cut-some', 'stall', 'token-expiry', 'end-sessions'];
export const CLUSTER_FAULTS: readonly FaultKind[] = FAULT_KINDS;

export interface PlannedFault {
  /** Milliseconds after the fault phase starts. */
  readonly at: number;
  readonly kind: FaultKind;
  /** Which node or proxy (modulo how many there are). */
  readonly target: number;
  /** Share of connections, for cuts and stalls. */
  readonly fraction: number;
  /** How long the fault lasts before it is undone (a stall, a pause, a node's time down). */
  readonly durationMs: number;
}

/** Faults one after another over `phaseMs`, 0.5–2.5 s apart, each kind from `kinds`. */
export function planFaults(seed: number, kinds: readonly FaultKind[], phaseMs: number): PlannedFault[] {
  const random = seededRandom(seed ^ 0x5eed);
  const plan: PlannedFault[] = [];
  let at = 500 + random() * 1000;
  while (at < phaseMs && kinds.length > 0) {
    const kind = kinds[Math.floor(random() * kinds.length)]!;
    const durationMs = Math.round(kind === 'redis-pause' ? 500 + random() * 1500 : 500 + random() * 2500);
    plan.push({ at: Math.round(at), kind, target: Math.floor(random() * 1000), fraction: 0.3 + random() * 0.5, durationMs });
    at += durationMs + 500 + random() * 2000;
  }
  return plan;
}
