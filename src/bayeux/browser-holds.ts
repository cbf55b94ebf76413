/**
 * @module
 * Which browsers hold a long-poll now, so that a second tab of one browser polls instead of holding
 * a second connection: browsers allow only a few connections per host (Bayeux §Multiple clients).
 */
import type { Session } from '../core/session.js';

export class BrowserHolds {
  /**
   * Each browser's holders: the session itself while it is the only one (nearly always: a hold
   * starts and ends every poll cycle, by the thousand, and a Set each time would be garbage).
   */
  readonly #holders = new Map<string, Session | Set<Session>>();

  /** How many sessions of this browser, other than `session`, hold a connect now. */
  othersHolding(browserId: string, session: Session): number {
    const holders = this.#holders.get(browserId);
    if (holders === undefined) return 0;
    if (!(holders instanceof Set)) return holders === session ? 0 : 1;
    return holders.size - (holders.has(session) ? 1 : 0);
  }

  add(browserId: string, session: Session): void {
    const holders = this.#holders.get(browserId);
    if (holders === undefined) this.#holders.set(browserId, session);
    else if (holders instanceof Set) holders.add(session);
    else if (holders !== session) this.#holders.set(browserId, new Set([holders, session]));
  }

  remove(browserId: string, session: Session): void {
    const holders = this.#holders.get(browserId);
    if (holders === undefined) return;
    if (!(holders instanceof Set)) {
      if (holders === session) this.#holders.delete(browserId);
      return;
    }
    holders.delete(session);
    if (holders.size === 1) this.#holders.set(browserId, holders.values().next().value!);
  }
}
