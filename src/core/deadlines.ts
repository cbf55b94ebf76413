/**
 * @module
 * Deadlines for many waiters with few timers: held connects and long-polls each wait up to a
 * timeout that is nearly always the same for all of them, so their deadlines arrive in the order
 * they were set. One queue per timeout length, in deadline order, and one timer per queue (for its
 * earliest deadline) replace a timer (and its closure) per held request: with 100,000 held polls
 * that is a handful of timers instead of 100,000. Nothing is removed to cancel: the target forgets
 * the deadline's ticket, and ignores it when it comes due.
 */
import type { Clock, Timer } from './clock.js';

/** What waits: told when a deadline it was given passes, with that deadline's ticket. */
export interface DeadlineTarget {
  /**
   * `ticket` is what add() returned: a target that has since been given another deadline, or
   * wants none (cancelled), ignores it. The queue keeps no object per deadline to cancel.
   */
  deadlinePassed(ticket: number): void;
}

/** Tickets, never 0 (a target's "no deadline"): small integers, kept in a field without a box. */
let lastTicket = 0;

function nextTicket(): number {
  lastTicket = lastTicket >= 0x3fff_ffff ? 1 : lastTicket + 1;
  return lastTicket;
}

/**
 * One timeout length's deadlines, in the order set (so in deadline order), as three arrays — the
 * target, its ticket, the time (unboxed doubles) — rather than an object (and a boxed number) per
 * deadline: 24 bytes each, by the hundred thousand.
 */
class DeadlineQueue {
  readonly #targets: DeadlineTarget[] = [];
  readonly #tickets: number[] = [];
  readonly #at: number[] = [];
  /** Index of the first entry still waiting (the ones before it are done). */
  #head = 0;
  #timer: Timer | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly delayMs: number,
  ) {}

  add(target: DeadlineTarget): number {
    const ticket = nextTicket();
    this.#targets.push(target);
    this.#tickets.push(ticket);
    this.#at.push(this.clock.now() + this.delayMs);
    if (this.#timer === undefined) this.#arm(this.delayMs);
    return ticket;
  }

  #arm(ms: number): void {
    this.#timer = this.clock.setTimeout(() => this.#due(), Math.max(0, ms));
  }

  /** The timer armed for the head's deadline fired: that entry is due, and every one due by now. */
  #due(): void {
    this.#timer = undefined;
    const targets = this.#targets;
    const at = this.#at;
    // The head is due even when the clock reads earlier (a timer may fire a millisecond early).
    const now = Math.max(this.clock.now(), at[this.#head] ?? 0);
    while (this.#head < targets.length && at[this.#head]! <= now) {
      const i = this.#head++;
      const target = targets[i]!;
      // Let go of the target (a cancelled one may be long gone), with a placeholder of the same kind.
      targets[i] = PASSED;
      target.deadlinePassed(this.#tickets[i]!);
    }
    // Drop what is done once it is most of the arrays, so they do not grow forever.
    if (this.#head > 1024 && this.#head * 2 > targets.length) {
      targets.splice(0, this.#head);
      this.#tickets.splice(0, this.#head);
      at.splice(0, this.#head);
      this.#head = 0;
    }
    if (this.#head < targets.length) this.#arm(at[this.#head]! - this.clock.now());
    else {
      targets.length = 0;
      this.#tickets.length = 0;
      at.length = 0;
      this.#head = 0;
    }
  }

  dispose(): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** What a passed deadline's place holds: nothing to tell. */
const PASSED: DeadlineTarget = { deadlinePassed: () => undefined };

export class Deadlines {
  readonly #queues = new Map<number, DeadlineQueue>();

  constructor(private readonly clock: Clock) {}

  /**
   * Tells `target` once `delayMs` has passed, with the ticket this returns (never 0). To cancel,
   * the target forgets the ticket: it stays queued, and is ignored when due.
   */
  add(target: DeadlineTarget, delayMs: number): number {
    let queue = this.#queues.get(delayMs);
    if (queue === undefined) {
      queue = new DeadlineQueue(this.clock, delayMs);
      this.#queues.set(delayMs, queue);
    }
    return queue.add(target);
  }

  dispose(): void {
    for (const queue of this.#queues.values()) queue.dispose();
    this.#queues.clear();
  }
}
