/**
 * @module
 * Idempotency keys: a backend that publishes with a key may retry after a timeout, or after its
 * connection was cut before it read the answer, and the message is stored at most once within
 * the window; the retry is answered with the first publish's id. The Redis engine keeps the keys
 * in Redis, written in the publish's own script (cluster-wide, atomic with the message); the
 * memory engine keeps them here, per node and bounded.
 */

/** Longest key accepted: a UUID is 36 characters, a hash in hex 64. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;

/** Keys the memory engine remembers at most; past it the oldest are forgotten first (their window shortens). */
export const MEMORY_IDEMPOTENCY_KEYS = 100_000;

/** Why `key` cannot serve as an idempotency key, or undefined when it can. */
export function idempotencyKeyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)) {
    return `an idempotency key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters without spaces (a UUID, say)`;
  }
  return undefined;
}

/** What a key records: the first publish made with it. */
export interface FirstPublish {
  readonly id: string;
  readonly channel: string;
  readonly publishedAt: number;
}

/** The memory engine's keys: oldest first, each until its window ends. */
export class IdempotencyKeys {
  readonly #records = new Map<string, { first: FirstPublish; until: number }>();
  /** Keys forgotten while their window lasted, to make room (a retry with one of them publishes again). */
  #forgottenEarly = 0;

  constructor(private readonly max = MEMORY_IDEMPOTENCY_KEYS) {}

  get size(): number {
    return this.#records.size;
  }

  get forgottenEarly(): number {
    return this.#forgottenEarly;
  }

  /** The first publish made with `key`, while its window lasts. */
  find(key: string, now: number): FirstPublish | undefined {
    const record = this.#records.get(key);
    if (record === undefined) return undefined;
    if (record.until > now) return record.first;
    this.#records.delete(key);
    return undefined;
  }

  remember(key: string, first: FirstPublish, now: number, windowMs: number): void {
    // Windows are alike, so the oldest record ends first: drop the ended ones from the front.
    for (const [oldest, record] of this.#records) {
      if (record.until > now && this.#records.size < this.max) break;
      if (record.until > now) this.#forgottenEarly++;
      this.#records.delete(oldest);
    }
    this.#records.set(key, { first, until: now + windowMs });
  }

  clear(): void {
    this.#records.clear();
  }
}
