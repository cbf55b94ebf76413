/**
 * @module
 * Every limit Herald enforces has a name, and every time one refuses something it is counted
 * here: operators see which limit bites (in /health now, in /metrics later) without reading logs.
 */
import { addressGroup } from './address-group.js';

export const LIMIT_NAMES = [
  'message_size', // a published message's data over maxMessageBytes
  'body_size', // a request body or WebSocket frame over maxBodyBytes
  'batch_messages', // a batch publish (POST /pub) with more messages than maxBatchMessages
  'message_rate', // a client sending faster than maxMessageRate
  'address_rate', // an address publishing without a session faster than maxMessageRate
  'subscriptions', // a session over maxSubscriptions
  'sessions_per_address', // one address over maxSessionsPerAddress
  'connections', // the server over maxConnections
  'request_timeout', // a client too slow to send its whole request (requestTimeoutMs)
  'queue_dropped', // a slow consumer's oldest delivery dropped (policy drop-oldest)
  'queue_closed', // a slow consumer's session closed (policy disconnect)
  'send_buffer', // a slow consumer's WebSocket or stream (SSE, http-stream) cut: its unsent bytes passed maxBufferedBytes (its session may live on, or close as queue_closed)
  'memory_history', // history messages forgotten because the memory budget was reached
  'memory_queues', // sessions the slow-consumer policy acted on because the memory budget was reached
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

/** Addresses tracked at once by default; past it the least recently seen one is forgotten. */
export const ADDRESS_RATE_TRACKED = 10_000;

/**
 * The message rate of clients that have no session to hold a bucket (sessionless Bayeux
 * publishes, REST publishes with a client token): one bucket per network address, with the
 * sessions' semantics (`ratePerSecond`, bursts of twice that). The map is bounded: past
 * `maxAddresses` the least recently seen address is forgotten, and comes back with a full bucket.
 */
export class AddressRates {
  readonly #buckets = new Map<string, RateBucket>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly now: () => number,
    private readonly counters?: LimitCounters,
    private readonly maxAddresses = ADDRESS_RATE_TRACKED,
  ) {}

  get rate(): number {
    return this.ratePerSecond;
  }

  /** Counts one message from `address`; false (and counted as `address_rate`) when it sends too fast. */
  allow(address: string | undefined): boolean {
    if (this.ratePerSecond <= 0) return true;
    // Behind no socket (an in-process request) there is nobody to tell apart: they share a bucket.
    const key = addressGroup(address) ?? '';
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = new RateBucket(this.ratePerSecond, this.ratePerSecond * 2, this.now());
      if (this.#buckets.size >= this.maxAddresses) this.#buckets.delete(this.#buckets.keys().next().value!);
    } else {
      // Re-inserting keeps the map in order of last use, so the least recently seen goes first.
      this.#buckets.delete(key);
    }
    this.#buckets.set(key, bucket);
    if (bucket.take(this.now())) return true;
    this.counters?.hit('address_rate');
    return false;
  }
}
