/**
 * @module
 * Notices a network that breaks held requests: a proxy or mobile gateway that cuts any request
 * (or connection) it has held for N seconds. Its mark is a run of holds — held connects, event
 * streams, WebSockets — ending in errors before their time, all at about the same age; a flaky
 * network cuts at random ages instead. Such a network leaves interval polling as the only mode
 * that works without a reconnect every N seconds.
 */

/** Cuts in a row, at a consistent age, that make the verdict. */
const CUTS_FOR_VERDICT = 3;
/** Ages within this much of each other are "the same": max(MIN_BAND_MS, half the longest). */
const MIN_BAND_MS = 1000;

export class HoldCuts {
  /** Ages (ms) at which the latest holds were cut, oldest first. */
  #cuts: number[] = [];

  /** A hold ended after `heldMs`: cut (an error before its time was up), or answered. */
  record(heldMs: number, cut: boolean): void {
    if (cut) {
      this.#cuts.push(heldMs);
      if (this.#cuts.length > CUTS_FOR_VERDICT) this.#cuts.shift();
      return;
    }
    // Only a hold that outlived the cuts shows the network lets it through; one answered early
    // (a message came) says nothing about what would have cut it.
    const longest = Math.max(0, ...this.#cuts);
    if (heldMs > longest + band(longest)) this.#cuts = [];
  }

  /** The age at which holds are cut, once the latest ones all were, at about the same age; else undefined. */
  get cutAfterMs(): number | undefined {
    if (this.#cuts.length < CUTS_FOR_VERDICT) return undefined;
    const longest = Math.max(...this.#cuts);
    const shortest = Math.min(...this.#cuts);
    return longest - shortest <= band(longest) ? shortest : undefined;
  }
}

function band(ms: number): number {
  return Math.max(MIN_BAND_MS, ms / 2);
}
