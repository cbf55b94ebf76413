/**
 * @module
 * Owns every live session of this node: creation, lookup, expiry, and the per-tick flush that lets
 * a burst of publishes leave in one response per held request.
 */
import type { Clock, Timer } from './clock.js';
import { systemClock } from './clock.js';
import { addressGroup } from './address-group.js';
import { randomId } from './ids.js';
import { LimitCounters } from './limits.js';
import type { MemoryBudget } from './memory-budget.js';
import type { Delivery } from './message.js';
import { Deadlines } from './deadlines.js';
import type { CloseReason, SessionHooks, SessionLimits, SlowConsumerPolicy } from './session.js';
import { Session } from './session.js';
import { CLOSE_REASONS } from './close-reasons.js';

export interface SessionStoreOptions {
  /** A session with nothing held expires this long after the client last showed life. */
  maxIntervalMs: number;
  /** Deliveries a session may queue before the slow-consumer policy acts. */
  maxQueue: number;
  /** What a full queue does (default: close the session). */
  slowConsumer?: SlowConsumerPolicy;
  /** Messages per second one client may send; 0 = unlimited (the default). */
  messageRate?: number;
  /** Sessions one network address may hold at once (default: unlimited). */
  maxSessionsPerAddress?: number;
  /** Where refusals and drops are counted. */
  limits?: LimitCounters;
  /**
   * Shared with the engine's history: queues count against it, and when it is exceeded the
   * sessions with the heaviest queues get the slow-consumer policy.
   */
  memoryBudget?: MemoryBudget;
  /** Told the first time a delivery leaves for any client (publish→deliver latency). */
  onFirstSent?: (delivery: Delivery) => void;
  /**
   * How long messages for a push stream or held request are gathered before they leave (0: at the
   * end of the tick they arrived in). One timer serves every session with something pending, so a
   * burst leaves each socket in one write.
   */
  writeDelayMs?: number;
  /** How often expiry is checked. */
  sweepIntervalMs?: number;
  clock?: Clock;
  newId?: () => string;
  /** Told when flushing a session throws; the session is skipped, the others go on. */
  onFlushError?: (error: unknown, session: Session) => void;
}

export interface SessionCensus {
  readonly sessions: number;
  /** Held requests not on a push stream: long-polls waiting for messages. */
  readonly heldPolls: number;
  readonly subscriptions: number;
  /** Deliveries queued across every session. */
  readonly queued: number;
  /** The sessions with the longest queues (slow consumers first), by public id. */
  readonly deepestQueues: readonly { id: string; queued: number; address: string | undefined }[];
}

export type SessionClosedListener = (session: Session, reason: CloseReason) => void;

/** A session closed for a reason that tells its client not to come back, remembered for a while (see departed). */
export interface Departure {
  readonly reason: CloseReason;
  readonly note: string | undefined;
  readonly at: number;
}

/** Departures remembered at most: the oldest are forgotten first (their clients then hear `session_unknown`). */
const MAX_DEPARTURES = 10_000;

export class SessionStore {
  readonly #sessions = new Map<string, Session>();
  readonly #ready: Session[] = [];
  readonly #closedListeners: SessionClosedListener[] = [];
  readonly #createdListeners: ((session: Session) => void)[] = [];
  readonly #perAddress = new Map<string, number>();
  /** Sessions told not to come back, by clientId, oldest first (see departed). */
  readonly #departures = new Map<string, Departure>();
  readonly #limits: SessionLimits;
  readonly counters: LimitCounters;
  readonly #flushErrors: (error: unknown, session: Session) => void;
  readonly #clock: Clock;
  readonly #newId: () => string;
  readonly #sweeper: Timer;
  /** One set of hooks shared by every session: no closures held per session. */
  readonly #hooks: SessionHooks;
  /** Held requests' timeouts, shared by every session. */
  readonly #holds: Deadlines;
  #flushScheduled = false;

  constructor(private readonly options: SessionStoreOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#newId = options.newId ?? randomId;
    this.#flushErrors = options.onFlushError ?? (() => {});
    this.#limits = { maxQueue: options.maxQueue, slowConsumer: options.slowConsumer ?? 'disconnect', messageRate: options.messageRate ?? 0 };
    this.counters = options.limits ?? new LimitCounters();
    this.#holds = new Deadlines(this.#clock);
    this.#hooks = {
      limits: this.#limits,
      clock: this.#clock,
      onReady: (ready) => this.#scheduleFlush(ready),
      onDropped: () => this.counters.hit('queue_dropped'),
      onFirstSent: options.onFirstSent,
      memory: options.memoryBudget,
      holds: this.#holds,
    };
    const sweepMs = options.sweepIntervalMs ?? Math.min(1000, Math.max(10, Math.floor(options.maxIntervalMs / 4)));
    this.#sweeper = this.#clock.setInterval(() => this.sweep(), sweepMs);
    options.memoryBudget?.reclaimWith('queues', (bytes) => this.#reclaimQueues(options.memoryBudget!, bytes));
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Sessions with a request held now (walks every session: for stats, not hot paths). */
  heldCount(): number {
    let held = 0;
    for (const session of this.#sessions.values()) if (session.isHeld) held++;
    return held;
  }

  /** One walk over every session for operators (metrics, dashboard): never on a hot path. */
  census(slowest = 10): SessionCensus {
    let heldPolls = 0;
    let subscriptions = 0;
    let queued = 0;
    const deepest: Session[] = [];
    for (const session of this.#sessions.values()) {
      if (session.isHeld && session.stream === undefined) heldPolls++;
      subscriptions += session.subscriptions.size;
      const depth = session.queueLength;
      queued += depth;
      if (depth === 0 || slowest <= 0) continue;
      if (deepest.length < slowest || depth > deepest[deepest.length - 1]!.queueLength) {
        deepest.push(session);
        deepest.sort((a, b) => b.queueLength - a.queueLength);
        if (deepest.length > slowest) deepest.pop();
      }
    }
    return {
      sessions: this.#sessions.size,
      heldPolls,
      subscriptions,
      queued,
      deepestQueues: deepest.map((session) => ({ id: session.publicId, queued: session.queueLength, address: session.address })),
    };
  }

  /** Whether `address` already holds as many sessions as it may (counted as a refusal). */
  atAddressLimit(address: string | undefined): boolean {
    const max = this.options.maxSessionsPerAddress;
    const group = addressGroup(address);
    if (group === undefined || max === undefined || (this.#perAddress.get(group) ?? 0) < max) return false;
    this.counters.hit('sessions_per_address');
    return true;
  }

  /** `address`: where the client connects from, counted against the per-address limit. */
  create(address?: string): Session {
    const session = new Session(this.#newId(), this.#hooks);
    this.#sessions.set(session.id, session);
    if (address !== undefined) {
      session.address = address;
      const group = addressGroup(address)!;
      this.#perAddress.set(group, (this.#perAddress.get(group) ?? 0) + 1);
    }
    for (const listener of this.#createdListeners) listener(session);
    return session;
  }

  get(id: unknown): Session | undefined {
    return typeof id === 'string' ? this.#sessions.get(id) : undefined;
  }

  onCreated(listener: (session: Session) => void): void {
    this.#createdListeners.push(listener);
  }

  /** Listeners run before the session forgets its subscriptions, so they can undo them. */
  onClosed(listener: SessionClosedListener): void {
    this.#closedListeners.push(listener);
  }

  /**
   * `note`: an operator's words on why (control plane). A session closed for a reason that tells
   * its client not to come back (CLOSE_REASONS `none`) is remembered for maxInterval, so that a
   * connect that was not held when it closed is told so too (see departed).
   */
  close(session: Session, reason: CloseReason, note?: string): void {
    if (session.isClosed || this.#sessions.get(session.id) !== session) return;
    this.#sessions.delete(session.id);
    if (session.address !== undefined) {
      const group = addressGroup(session.address)!;
      const left = this.#perAddress.get(group)! - 1;
      if (left === 0) this.#perAddress.delete(group);
      else this.#perAddress.set(group, left);
    }
    if (reason === 'queue_full') this.counters.hit('queue_closed');
    if (reason !== 'client' && CLOSE_REASONS[reason].reconnect === 'none') {
      if (this.#departures.size >= MAX_DEPARTURES) this.#departures.delete(this.#departures.keys().next().value!);
      this.#departures.set(session.id, { reason, note, at: this.#clock.now() });
    }
    for (const listener of this.#closedListeners) listener(session, reason);
    session.close(reason, note);
  }

  /** Why the session `id` was told not to come back, if it was, within maxInterval. */
  departed(id: unknown): Departure | undefined {
    return typeof id === 'string' ? this.#departures.get(id) : undefined;
  }

  /** Every live session, now (a copy: closing them does not disturb it). */
  all(): Session[] {
    return [...this.#sessions.values()];
  }

  closeAll(reason: CloseReason): void {
    for (const session of [...this.#sessions.values()]) this.close(session, reason);
  }

  /** Closes every session nobody has listened for during longer than maxInterval, and those whose token expired. */
  sweep(): void {
    const now = this.#clock.now();
    const deadline = now - this.options.maxIntervalMs;
    for (const [id, departure] of this.#departures) {
      if (departure.at > deadline) break;
      this.#departures.delete(id);
    }
    for (const session of this.#sessions.values()) {
      if (!session.isAttended && session.lastActivity <= deadline) this.close(session, 'expired');
      else if (session.principal?.expiresAt !== undefined && session.principal.expiresAt <= now) this.close(session, 'token_expired');
    }
  }

  dispose(): void {
    this.#clock.clearInterval(this.#sweeper);
    this.#holds.dispose();
  }

  /**
   * The memory budget wants `bytes` of queues back: the slow-consumer policy acts on the heaviest
   * queues first — the oldest half dropped where the client can be told of the gap, else the
   * session closed — until that much is freed. Deliveries other queues share stay counted until
   * they are freed too, so this may take several sessions.
   */
  #reclaimQueues(budget: MemoryBudget, bytes: number): void {
    const goal = budget.usage().queueBytes - bytes;
    const heaviest = [...this.#sessions.values()].filter((session) => session.queueLength > 0).sort((a, b) => b.queuedBytes - a.queuedBytes);
    let acted = 0;
    for (const session of heaviest) {
      if (budget.usage().queueBytes <= goal) break;
      acted++;
      if (session.canDropOldest) session.dropOldest(Math.ceil(session.queueLength / 2));
      else this.close(session, 'queue_full');
    }
    if (acted > 0) budget.evicted('queues', acted);
  }

  #scheduleFlush(session: Session): void {
    this.#ready.push(session);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    const delayMs = this.options.writeDelayMs ?? 0;
    if (delayMs > 0) this.#clock.setTimeout(this.#flushNow, delayMs);
    else setImmediate(this.#flushNow);
  }

  readonly #flushNow = (): void => this.#flush();

  #flush(): void {
    this.#flushScheduled = false;
    const ready = this.#ready.splice(0);
    for (const session of ready) {
      try {
        session.flush();
      } catch (error) {
        // One session's failure (a message that cannot be encoded, a broken stream) must not take
        // the others, or the process, with it.
        this.#flushErrors(error, session);
      }
    }
  }
}
