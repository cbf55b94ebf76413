/**
 * @module
 * Subscriber lookup by channel. A publish on `/a/b/c` expands into its few candidate patterns
 * (`/a/b/c`, `/a/b/*`, `/a/b/**`, `/a/**`, `/**`) and looks each up in a map, so the cost of a
 * lookup depends on the channel's depth, never on how many sessions or patterns exist.
 */
import { expandChannel } from './channel.js';

const EMPTY: ReadonlySet<never> = new Set();

export class ChannelIndex<T> {
  readonly #byPattern = new Map<string, Set<T>>();
  /** Each pattern's string as first added (see shared): one entry per pattern, not per subscriber. */
  readonly #names = new Map<string, string>();

  /**
   * `pattern` as the index already holds it, if it does: one string for every subscriber to keep,
   * rather than a copy each (every client's subscribe parses its own), by the ten thousand.
   */
  shared(pattern: string): string {
    return this.#names.get(pattern) ?? pattern;
  }

  /** Adds `subscriber` under `pattern`; true when this is the pattern's first subscriber. */
  add(pattern: string, subscriber: T): boolean {
    let set = this.#byPattern.get(pattern);
    if (set === undefined) {
      set = new Set();
      this.#byPattern.set(pattern, set);
      this.#names.set(pattern, pattern);
    }
    const first = set.size === 0;
    set.add(subscriber);
    return first;
  }

  /** Removes `subscriber` from `pattern`; true when the pattern has no subscribers left. */
  remove(pattern: string, subscriber: T): boolean {
    const set = this.#byPattern.get(pattern);
    if (set === undefined || !set.delete(subscriber)) return false;
    if (set.size > 0) return false;
    this.#byPattern.delete(pattern);
    this.#names.delete(pattern);
    return true;
  }

  /**
   * Every subscriber of a pattern matching the concrete `channel`, each once. When one pattern
   * alone matches (the common case) its own set comes back, not a copy: a fan-out to thousands
   * then builds nothing. Read it, do not change it.
   */
  match(channel: string): ReadonlySet<T> {
    let only: Set<T> | undefined;
    let merged: Set<T> | undefined;
    for (const pattern of expandChannel(channel)) {
      const set = this.#byPattern.get(pattern);
      if (set === undefined) continue;
      if (only === undefined) {
        only = set;
        continue;
      }
      merged ??= new Set(only);
      for (const subscriber of set) merged.add(subscriber);
    }
    return merged ?? only ?? EMPTY;
  }

  /** The subscribers of exactly `pattern` (not of other patterns overlapping it). */
  subscribersOf(pattern: string): ReadonlySet<T> {
    return this.#byPattern.get(pattern) ?? EMPTY;
  }

  get patternCount(): number {
    return this.#byPattern.size;
  }
}
