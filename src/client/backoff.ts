/**
 * @module
 * Reconnection delays: exponential with jitter, capped. A thousand clients cut at the same moment
 * spread their retries instead of hammering the recovering server in step (the "thundering
 * herd" of socket.io-client's backo2 and CometD's fixed back-off).
 */

export interface BackoffOptions {
  /** Delay before the first retry after an error. */
  initialMs?: number;
  /** The delay never grows past this. */
  maxMs?: number;
  /** Growth per failed attempt. */
  factor?: number;
  /** Fraction of each delay drawn at random: 0 = none, 1 = anywhere from 0 to the full delay. */
  jitter?: number;
}

export const BACKOFF_DEFAULTS: Required<BackoffOptions> = { initialMs: 1000, maxMs: 30_000, factor: 2, jitter: 0.5 };

export class Backoff {
  readonly #options: Required<BackoffOptions>;
  #attempt = 0;

  /** `random` returns a number in [0, 1); injected so tests can pin the jitter. */
  constructor(
    options: BackoffOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.#options = { ...BACKOFF_DEFAULTS, ...options };
    const { initialMs, maxMs, factor, jitter } = this.#options;
    if (!(initialMs >= 0 && maxMs >= initialMs && factor >= 1 && jitter >= 0 && jitter <= 1)) {
      throw new RangeError('backoff: need 0 <= initialMs <= maxMs, factor >= 1 and 0 <= jitter <= 1');
    }
  }

  /** Failed attempts since the last success. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next retry; each call counts one more failure. */
  next(): number {
    const { initialMs, maxMs, factor, jitter } = this.#options;
    const ceiling = Math.min(maxMs, initialMs * factor ** Math.min(this.#attempt, 64));
    this.#attempt++;
    // Jitter only ever shortens the delay, so the cap holds.
    return Math.round(ceiling * (1 - jitter * this.random()));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
