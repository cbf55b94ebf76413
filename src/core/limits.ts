/**
 * @module
 * Every limit Herald enforces has a name, and every time one refuses something it is counted
 * here: operators see which limit bites (in /health now, in /metrics later) without reading logs.
 */

export const LIMIT_NAMES = [
  'message_size', // a published message's data over maxMessageBytes
  'body_size', // a request body or WebSocket frame over maxBodyBytes
  'message_rate', // a client sending faster than maxMessageRate
  'subscriptions', // a session over maxSubscriptions
  'sessions_per_address', // one address over maxSessionsPerAddress
  'connections', // the server over maxConnections
  'queue_dropped', // a slow consumer's oldest delivery dropped (policy drop-oldest)
  'queue_closed', // a slow consumer's session closed (policy disconnect)
] as const;

export type LimitName = (typeof LIMIT_NAMES)[number];

export class LimitCounters {
  readonly #counts = new Map<LimitName, number>(LIMIT_NAMES.map((name) => [name, 0]));

  hit(name: LimitName, times = 1): void {
    this.#counts.set(name, this.#counts.get(name)! + times);
  }

  get(name: LimitName): number {
    return this.#counts.get(name)!;
  }

  snapshot(): Record<LimitName, number> {
    return Object.fromEntries(this.#counts) as Record<LimitName, number>;
  }
}

/** A token bucket: `ratePerSecond` on average, bursts of up to `burst`. */
export class RateBucket {
  #tokens: number;
  #at: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.#tokens = burst;
    this.#at = now;
  }

  /** Takes one token; false when the bucket is empty. */
  take(now: number): boolean {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.ratePerSecond) / 1000);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
