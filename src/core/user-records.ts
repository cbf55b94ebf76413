/**
 * @module
 * Who is online, debounced: the record user tracking keeps (webhooks' `user.online` /
 * `user.offline`, `herald.on('online' | 'offline')`). A user — a token's `sub`; anonymous sessions
 * are not users — is online from its first connection (a session) anywhere until its last one has
 * been gone for the whole grace window: a long-poll client between two connects, a reconnect, a
 * move to another node or a tab handing over to another is back within it, and nothing is said.
 *
 * States per user: offline → (a connection) online → (its last one gone) leaving → (a connection)
 * online again, or (the grace window passed, found by a sweep) offline. Each change to online or
 * to offline is answered to exactly one caller, which tells it. Pure, time passed in: the memory
 * engine keeps one of these; the Redis engine keeps the same states in Redis, changed by scripts
 * (engines/redis/redis-users.ts), so that one call in the whole cluster gets each answer.
 */
export class UserRecords {
  /** Connections per user that has any. */
  readonly #connections = new Map<string, number>();
  /** Users without a connection, since when: online still, until their grace window has passed. */
  readonly #leaving = new Map<string, number>();

  /** A connection of `user` came. True when the user came online: it was offline, not leaving. */
  connected(user: string): boolean {
    const count = this.#connections.get(user);
    this.#connections.set(user, (count ?? 0) + 1);
    if (count !== undefined) return false;
    return !this.#leaving.delete(user);
  }

  /** A connection of `user` went. True when it was the last: the user is leaving from `now`. */
  disconnected(user: string, now: number): boolean {
    const count = this.#connections.get(user);
    if (count === undefined) return false;
    if (count > 1) {
      this.#connections.set(user, count - 1);
      return false;
    }
    this.#connections.delete(user);
    this.#leaving.set(user, now);
    return true;
  }

  /** The users that have been leaving for `graceMs` by `now`: offline, forgotten. */
  sweep(now: number, graceMs: number): string[] {
    const offline: string[] = [];
    for (const [user, since] of this.#leaving) {
      if (now - since < graceMs) continue;
      this.#leaving.delete(user);
      offline.push(user);
    }
    return offline;
  }

  /** Users online (connected, or leaving within their grace window). */
  get size(): number {
    return this.#connections.size + this.#leaving.size;
  }

  clear(): void {
    this.#connections.clear();
    this.#leaving.clear();
  }
}
