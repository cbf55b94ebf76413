/**
 * @module
 * The outbox of one process (the memory engine): an array bounded to its length, cursors in a
 * map, a lease in memory — shared by every handle on the same name, so that two servers on one
 * engine store an event once and one of them sends it, as nodes on Redis do. Lost with the
 * process, as everything the memory engine keeps.
 */
import type { Clock } from './clock.js';
import { randomId } from './ids.js';
import { skippedBefore } from './outbox.js';
import type { Outbox, OutboxClaim, OutboxEntry, OutboxRead } from './outbox.js';

/** What the handles on one name share. */
export class MemoryOutboxStore {
  readonly entries: OutboxEntry[] = [];
  seq = 0;
  /** Reader → the seq of the last entry it took. */
  readonly cursors = new Map<string, number>();
  /** Keys claimed, each until when. */
  readonly claims = new Map<string, number>();
  lease: { holder: string; until: number } | undefined;
}

export class MemoryOutbox implements Outbox {
  readonly #holder = randomId();

  constructor(
    private readonly store: MemoryOutboxStore,
    private readonly clock: Clock,
    private readonly maxLength: number,
  ) {}

  async add(event: string, claim?: OutboxClaim): Promise<boolean> {
    const { claims, entries } = this.store;
    if (claim !== undefined) {
      const now = this.clock.now();
      // Lapsed claims go when the next one is made: no timer, and at most as many as claimed within a ttl.
      for (const [claimed, until] of claims) if (until <= now) claims.delete(claimed);
      if (claims.has(claim.key)) return false;
      claims.set(claim.key, now + claim.ttlMs);
    }
    const seq = ++this.store.seq;
    entries.push({ id: String(seq), seq, event });
    if (entries.length > this.maxLength) entries.splice(0, entries.length - this.maxLength);
    return true;
  }

  async lease(ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    const { lease } = this.store;
    if (lease !== undefined && lease.holder !== this.#holder && lease.until > now) return false;
    this.store.lease = { holder: this.#holder, until: now + ttlMs };
    return true;
  }

  async release(): Promise<void> {
    if (this.store.lease?.holder === this.#holder) this.store.lease = undefined;
  }

  async read(reader: string, count: number): Promise<OutboxRead> {
    const { entries, cursors } = this.store;
    const cursor = cursors.get(reader);
    const oldest = entries[0]?.seq ?? this.store.seq + 1;
    const start = cursor === undefined ? 0 : Math.max(0, cursor + 1 - oldest);
    const read = entries.slice(start, start + count);
    return { entries: read, skipped: skippedBefore(cursor, read[0]), reset: false };
  }

  async ack(reader: string, entry: OutboxEntry): Promise<boolean> {
    const { lease, cursors } = this.store;
    if (lease?.holder !== this.#holder || lease.until <= this.clock.now()) return false;
    if (entry.seq > (cursors.get(reader) ?? 0)) cursors.set(reader, entry.seq);
    return true;
  }
}
