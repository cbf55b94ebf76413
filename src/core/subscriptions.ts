/**
 * @module
 * A session's subscriptions: a set of channel names and patterns, in the order they were added.
 * Nearly every session has exactly one (each `/sub` stream, most Bayeux clients), and a Set costs
 * ≈ 220 bytes even empty; so one is kept in a field and a Set is made only for a second.
 */
export class Subscriptions implements Iterable<string> {
  /** The only subscription, while there is at most one. */
  #one: string | undefined;
  /** All of them, once there have been two at once (kept until cleared: it stays ordered). */
  #many: Set<string> | undefined;

  get size(): number {
    return this.#many !== undefined ? this.#many.size : this.#one === undefined ? 0 : 1;
  }

  has(pattern: string): boolean {
    return this.#many !== undefined ? this.#many.has(pattern) : this.#one === pattern;
  }

  add(pattern: string): this {
    if (this.#many !== undefined) this.#many.add(pattern);
    else if (this.#one === undefined) this.#one = pattern;
    else if (this.#one !== pattern) {
      this.#many = new Set([this.#one, pattern]);
      this.#one = undefined;
    }
    return this;
  }

  /** Whether it was there. */
  delete(pattern: string): boolean {
    if (this.#many !== undefined) return this.#many.delete(pattern);
    if (this.#one !== pattern) return false;
    this.#one = undefined;
    return true;
  }

  clear(): void {
    this.#one = undefined;
    this.#many = undefined;
  }

  [Symbol.iterator](): Iterator<string> {
    if (this.#many !== undefined) return this.#many.values();
    return (this.#one === undefined ? [] : [this.#one]).values();
  }
}
