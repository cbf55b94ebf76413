/**
 * @module
 * The outbox of one node (the memory engine): an array bounded to its length, cursors in a map,
 * the lease always held. Lost with the process, as everything the memory engine keeps.
 */
import type { Clock } from './clock.js';
import { skippedBefore } from './outbox.js';
import type { Outbox, OutboxClaim, OutboxEntry, OutboxRead } from './outbox.js';

export class MemoryOutbox implements Outbox {
  readonly #entries: OutboxEntry[] = [];
  #seq = 0;
  /** Reader → the seq of the last entry it took. */
  readonly #cursors = new Map<string, number>();
  /** Keys claimed, each until when. */
  readonly #claims = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly maxLength: number,
  ) {}

  async add(event: string, claim?: OutboxClaim): Promise<boolean> {
    if (claim !== undefined) {
      const now = this.clock.now();
      // Lapsed claims go when the next one is made: no timer, and at most as many as claimed within a ttl.
      for (const [claimed, until] of this.#claims) if (until <= now) this.#claims.delete(claimed);
      if (this.#claims.has(claim.key)) return false;
      this.#claims.set(claim.key, now + claim.ttlMs);
    }
    const seq = ++this.#seq;
    this.#entries.push({ id: String(seq), seq, event });
    if (this.#entries.length > this.maxLength) this.#entries.splice(0, this.#entries.length - this.maxLength);
    return true;
  }

  async lease(): Promise<boolean> {
    return true;
  }

  async release(): Promise<void> {}

  async read(reader: string, count: number): Promise<OutboxRead> {
    const cursor = this.#cursors.get(reader);
    const oldest = this.#entries[0]?.seq ?? this.#seq + 1;
    const start = cursor === undefined ? 0 : Math.max(0, cursor + 1 - oldest);
    const entries = this.#entries.slice(start, start + count);
    return { entries, skipped: skippedBefore(cursor, entries[0]), reset: false };
  }

  async ack(reader: string, entry: OutboxEntry): Promise<boolean> {
    if (entry.seq > (this.#cursors.get(reader) ?? 0)) this.#cursors.set(reader, entry.seq);
    return true;
  }
}
