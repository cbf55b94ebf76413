/**
 * @module
 * Which browsers hold a long-poll now, so that a second tab of one browser polls instead of holding
 * a second connection: browsers allow only a few connections per host (Bayeux §Multiple clients).
 */
import type { Session } from '../core/session.js';

export class BrowserHolds {
  readonly #holders = new Map<string, Set<Session>>();

  /** How many sessions of this browser, other than `session`, hold a connect now. */
  othersHolding(browserId: string, session: Session): number {
    const holders = this.#holders.get(browserId);
    if (holders === undefined) return 0;
    return holders.size - (holders.has(session) ? 1 : 0);
  }

  add(browserId: string, session: Session): void {
    let holders = this.#holders.get(browserId);
    if (holders === undefined) {
      holders = new Set();
      this.#holders.set(browserId, holders);
    }
    holders.add(session);
  }

  remove(browserId: string, session: Session): void {
    const holders = this.#holders.get(browserId);
    if (holders === undefined) return;
    holders.delete(session);
    if (holders.size === 0) this.#holders.delete(browserId);
  }
}
