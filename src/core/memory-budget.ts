/**
 * @module
 * One memory budget for what Herald holds on behalf of clients: history (kept for resumers) and
 * session queues (waiting for their recipients). Without it anyone who may publish could fill the
 * heap: 100 messages of 128 KiB on each of 100,000 channels, 10,000 queued per session (issue 15).
 *
 * Bytes are counted by each message's serialised size, known once at publish: a message in
 * history counts once; a Delivery counts once however many queues share it, plus a few bytes per
 * queue entry. When the total passes the budget, the larger of the two accounts gives back until
 * the total is at LOW_WATER of the budget (so one reclaim covers many publishes):
 * - history forgets its least recently written channels whole; the engine keeps a tombstone, so a
 *   reader resuming from before gets a gap signal, never a silent loss;
 * - the sessions with the biggest queues get the slow-consumer policy (closed as `queue_full`, or
 *   their oldest deliveries dropped with a gap signal).
 * Reclaiming runs in a microtask after the charge that crossed the budget, never in the middle of
 * a fan-out or a history write.
 */
import { HeraldError } from './errors.js';
import type { LimitCounters } from './limits.js';
import type { Delivery } from './message.js';

/** Bytes counted per message beyond its data: the Message object, its id and timestamps, a slot. */
export const MESSAGE_OVERHEAD_BYTES = 160;
/** Bytes counted each time one more queue holds a (shared) Delivery. */
export const QUEUE_ENTRY_BYTES = 16;
/** A reclaim brings usage down to this share of the budget. */
export const LOW_WATER = 0.9;

export type MemoryAccount = 'history' | 'queues';

/** Gives back about `bytes` of one account (it may free more, or less when it holds less). */
export type Reclaimer = (bytes: number) => void;

export interface MemoryUsage {
  readonly budgetBytes: number;
  readonly historyBytes: number;
  readonly queueBytes: number;
}

export class MemoryBudget {
  #historyBytes = 0;
  #queueBytes = 0;
  readonly #reclaimers: Partial<Record<MemoryAccount, Reclaimer>> = {};
  #scheduled = false;

  /** `counters`: where evictions are counted (memory_history, memory_queues). */
  constructor(
    readonly budgetBytes: number,
    readonly counters?: LimitCounters,
  ) {
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < 1) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `the memory budget must be a positive number of bytes, got ${budgetBytes}`);
    }
  }

  get usedBytes(): number {
    return this.#historyBytes + this.#queueBytes;
  }

  usage(): MemoryUsage {
    return { budgetBytes: this.budgetBytes, historyBytes: this.#historyBytes, queueBytes: this.#queueBytes };
  }

  /** Who gives back memory of `account` when the budget is exceeded (one per account). */
  reclaimWith(account: MemoryAccount, reclaimer: Reclaimer): void {
    this.#reclaimers[account] = reclaimer;
  }

  /** History holds `bytes` more (negative: fewer). */
  chargeHistory(bytes: number): void {
    this.#historyBytes += bytes;
    if (bytes > 0) this.#check();
  }

  /** One more queue holds `delivery`: its bytes count once, when the first queue takes it. */
  hold(delivery: Delivery): void {
    if (delivery.holders++ === 0) this.#queueBytes += delivery.bytes;
    this.#queueBytes += QUEUE_ENTRY_BYTES;
    this.#check();
  }

  /** One queue let `delivery` go (sent, dropped, or its session closed). */
  release(delivery: Delivery): void {
    if (--delivery.holders === 0) this.#queueBytes -= delivery.bytes;
    this.#queueBytes -= QUEUE_ENTRY_BYTES;
  }

  /** Counts what a reclaim forgot or cut, for operators. */
  evicted(account: MemoryAccount, count: number): void {
    this.counters?.hit(account === 'history' ? 'memory_history' : 'memory_queues', count);
  }

  /** Brings usage down to the low-water mark if it is over the budget: the larger account gives back first. */
  reclaim(): void {
    this.#scheduled = false;
    const target = Math.floor(this.budgetBytes * LOW_WATER);
    while (this.usedBytes > target) {
      const before = this.usedBytes;
      const larger: MemoryAccount = this.#historyBytes >= this.#queueBytes ? 'history' : 'queues';
      this.#reclaimers[larger]?.(this.usedBytes - target);
      if (this.usedBytes < before) continue;
      // The larger account could not give back (nothing of it can go): try the other.
      this.#reclaimers[larger === 'history' ? 'queues' : 'history']?.(this.usedBytes - target);
      if (this.usedBytes >= before) return;
    }
  }

  #check(): void {
    if (this.#scheduled || this.usedBytes <= this.budgetBytes) return;
    this.#scheduled = true;
    queueMicrotask(() => this.reclaim());
  }
}
