/**
 * @module
 * Smart intervals for interval polling: short while someone is looking (the page visible and its
 * user active) or messages are flowing, doubling up to a ceiling while the page rests, and short
 * again on a delivery or the moment the page wakes — so a forgotten background tab costs the
 * server a request every half minute, not every second. The server's advice bounds it: never
 * sooner than its `interval`, and always soon enough that it does not expire the session
 * (`interval` + `maxInterval`).
 */
import type { ActivitySource } from './activity.js';
import type { Advice } from './protocol.js';

export interface PollOptions {
  /** The interval while the page is visible and active, or messages flow. */
  readonly minMs: number;
  /** The longest the interval grows to while the page is hidden or idle. */
  readonly maxMs: number;
}

/** CometD's default, assumed when a server does not say how long it keeps a silent session. */
const DEFAULT_MAX_INTERVAL_MS = 10_000;
/**
 * The share of the server's `maxInterval` a poll may wait: the rest covers the request's way
 * there and the server's expiry sweep, so a resting tab's session is never expired between polls.
 */
const MAX_INTERVAL_SHARE = 0.75;

export class PollSchedule {
  #intervalMs: number;

  constructor(
    private readonly options: PollOptions,
    private readonly activity: ActivitySource,
  ) {
    if (!(options.minMs >= 0 && options.maxMs >= options.minMs)) throw new RangeError('polling: need 0 <= pollIntervalMs <= maxPollIntervalMs');
    this.#intervalMs = options.minMs;
  }

  /** How long to wait before the next poll, given the server's latest advice. Each call is one poll. */
  nextDelayMs(advice: Advice): number {
    const current = this.#intervalMs;
    this.#intervalMs = this.activity.isResting() ? Math.min(this.options.maxMs, Math.max(1, current * 2)) : this.options.minMs;
    const floor = Math.max(0, advice.interval ?? 0);
    const ceiling = floor + MAX_INTERVAL_SHARE * (advice.maxInterval ?? DEFAULT_MAX_INTERVAL_MS);
    return Math.round(Math.min(Math.max(current, floor), ceiling));
  }

  /** A message arrived: more may follow, so the next poll comes soon. */
  delivered(): void {
    this.#intervalMs = this.options.minMs;
  }

  /** Calls `wake` when the page wakes (the next poll should not wait); returns a function that stops it. */
  onWake(wake: () => void): () => void {
    return this.activity.onWake(() => {
      this.#intervalMs = this.options.minMs;
      wake();
    });
  }
}
