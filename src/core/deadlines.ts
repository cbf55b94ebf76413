/**
 * @module
 * Deadlines for many waiters with few timers: held connects and long-polls each wait up to a
 * timeout that is nearly always the same for all of them, so their deadlines arrive in the order
 * they were set. One queue per timeout length, in deadline order, and one timer per queue (for its
 * earliest deadline) replace a timer (and its closure) per held request: with 100,000 held polls
 * that is a handful of timers instead of 100,000. Cancelling only marks the entry; the queue skips
 * it when it comes due.
 */
import type { Clock, Timer } from './clock.js';

/** What waits: told once when its deadline passes, unless cancelled first. */
export interface DeadlineTarget {
  deadlinePassed(): void;
}

/** One waiter's place in a queue; `target` undefined once cancelled or due. */
export interface Deadline {
  target: DeadlineTarget | undefined;
  readonly at: number;
}

class DeadlineQueue {
  readonly #entries: Deadline[] = [];
  /** Index of the first entry still waiting in #entries (the ones before it are done). */
  #head = 0;
  #timer: Timer | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly delayMs: number,
  ) {}

  add(target: DeadlineTarget): Deadline {
    const deadline: Deadline = { target, at: this.clock.now() + this.delayMs };
    this.#entries.push(deadline);
    if (this.#timer === undefined) this.#arm(this.delayMs);
    return deadline;
  }

  #arm(ms: number): void {
    this.#timer = this.clock.setTimeout(() => this.#due(), Math.max(0, ms));
  }

  /** The timer armed for the head's deadline fired: that entry is due, and every one due by now. */
  #due(): void {
    this.#timer = undefined;
    const entries = this.#entries;
    // The head is due even when the clock reads earlier (a timer may fire a millisecond early).
    const now = Math.max(this.clock.now(), entries[this.#head]?.at ?? 0);
    while (this.#head < entries.length && entries[this.#head]!.at <= now) {
      const deadline = entries[this.#head++]!;
      const target = deadline.target;
      deadline.target = undefined;
      target?.deadlinePassed();
    }
    // Drop what is done once it is most of the array, so the array does not grow forever.
    if (this.#head > 1024 && this.#head * 2 > entries.length) {
      entries.splice(0, this.#head);
      this.#head = 0;
    }
    if (this.#head < entries.length) this.#arm(entries[this.#head]!.at - this.clock.now());
    else {
      entries.length = 0;
      this.#head = 0;
    }
  }

  dispose(): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

export class Deadlines {
  readonly #queues = new Map<number, DeadlineQueue>();

  constructor(private readonly clock: Clock) {}

  /** Tells `target` once `delayMs` has passed, unless cancel() is called with what this returns. */
  add(target: DeadlineTarget, delayMs: number): Deadline {
    let queue = this.#queues.get(delayMs);
    if (queue === undefined) {
      queue = new DeadlineQueue(this.clock, delayMs);
      this.#queues.set(delayMs, queue);
    }
    return queue.add(target);
  }

  cancel(deadline: Deadline): void {
    deadline.target = undefined;
  }

  dispose(): void {
    for (const queue of this.#queues.values()) queue.dispose();
    this.#queues.clear();
  }
}
