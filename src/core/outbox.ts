/**
 * @module
 * An outbox: events the cluster owes to outside receivers (webhooks), kept in the engine so that
 * they outlive the node that saw them. An event is added once cluster-wide (however many nodes
 * saw it: the first claim wins, and only a claimed event is stored, in the same step), kept in
 * order, and bounded: past `maxLength` the oldest go. One node at a time holds the lease and
 * sends; per reader (a receiver) the outbox keeps a cursor, the last entry it took, so that the
 * next lease holder resumes where the last one stopped. A reader whose next entries were dropped
 * meanwhile (the outbox was full) is told how many.
 */

export interface OutboxEntry {
  /** Its place in the outbox (opaque; what the reader acknowledges). */
  readonly id: string;
  /** 1 for the first entry added to the outbox, one more for each next: tells a reader what it missed. */
  readonly seq: number;
  /** The event as added (JSON, stored and sent as it is). */
  readonly event: string;
}

export interface OutboxRead {
  /** The entries after the reader's cursor, oldest first. */
  readonly entries: readonly OutboxEntry[];
  /** Entries dropped (the outbox was full) between the reader's cursor and the first of these. */
  readonly skipped: number;
  /** The reader's cursor was beyond the outbox (its store lost its data): it reads from the start again. */
  readonly reset: boolean;
}

/** A claim that makes an add happen once cluster-wide: the first add with `key` while no claim of it lasts. */
export interface OutboxClaim {
  readonly key: string;
  readonly ttlMs: number;
}

export interface Outbox {
  /**
   * Adds `event` (JSON) unless `claim` was claimed already within its time: resolves with whether
   * it was added. A claimed event is always stored (both in one step). Rejects when the store is
   * out of reach (HERALD_ERR_ENGINE_UNAVAILABLE): nothing was added, or it is unknown.
   */
  add(event: string, claim?: OutboxClaim): Promise<boolean>;
  /** Takes or renews the lease for `ttlMs`: true while this node holds it (it is the one that sends). */
  lease(ttlMs: number): Promise<boolean>;
  /** Gives the lease up, if held, so that another node takes it over at once. */
  release(): Promise<void>;
  /** Up to `count` entries after `reader`'s cursor (from the oldest kept when it has none). */
  read(reader: string, count: number): Promise<OutboxRead>;
  /** Moves `reader`'s cursor to `entry` (never back). False when this node no longer holds the lease: it must stop. */
  ack(reader: string, entry: OutboxEntry): Promise<boolean>;
}

/**
 * What a reader missed before `first`, given its cursor's seq (undefined: it has no cursor, so it
 * starts from what is kept and missed nothing).
 */
export function skippedBefore(cursorSeq: number | undefined, first: OutboxEntry | undefined): number {
  return cursorSeq === undefined || first === undefined ? 0 : Math.max(0, first.seq - cursorSeq - 1);
}
