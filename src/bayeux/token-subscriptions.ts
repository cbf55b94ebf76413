/**
 * @module
 * Subscriptions that rest on a token of their own (`ext.auth.token` on /meta/subscribe, such as a
 * short-lived one from `POST /sign`) end when it expires, as a REST stream does. Only that
 * subscription ends: the session is unsubscribed from the pattern, keeps the others, and is told
 * by a message it can act on (subscribe again with a fresh token, resuming from the last id seen):
 *
 *   {"channel":"/meta/unsubscribe","successful":true,"subscription":"/rooms/7","ext":{"herald":{"reason":"token_expired"}}}
 *
 * It rides the session's queue, so it arrives after every message delivered on that subscription.
 * Subscribing again to the pattern with a fresh token (or with rights of the session's own)
 * replaces the lease, so a client can renew before the end.
 */
import type { Clock, Timer } from '../core/clock.js';
import { Delivery } from '../core/message.js';
import type { Session } from '../core/session.js';

/** How often leases are checked: a token's expiry is given in whole seconds anyway. */
const SWEEP_MS = 250;

export class TokenSubscriptions {
  /** Per session, the patterns that rest on a token, and when (ms since the epoch) each token expires. */
  readonly #leases = new Map<Session, Map<string, number>>();
  #sweeper: Timer | undefined;

  constructor(
    private readonly clock: Clock,
    /** Ends one subscription whose token expired (the session is still subscribed to it). */
    private readonly end: (session: Session, pattern: string) => void,
  ) {}

  /**
   * Records how the session may hold each of `patterns` from now on: `leased` ones until
   * `expiresAt` (undefined: the token never expires), the others for as long as the session lives.
   */
  record(session: Session, patterns: readonly string[], leased: readonly string[], expiresAt: number | undefined): void {
    for (const pattern of patterns) {
      if (expiresAt !== undefined && leased.includes(pattern)) this.#lease(session, pattern, expiresAt);
      else this.release(session, [pattern]);
    }
  }

  /** The session no longer holds `patterns` on a token (it unsubscribed, or holds them by its own rights). */
  release(session: Session, patterns: readonly string[]): void {
    const leases = this.#leases.get(session);
    if (leases === undefined) return;
    for (const pattern of patterns) leases.delete(pattern);
    if (leases.size === 0) this.forget(session);
  }

  /** The session ended: its subscriptions went with it. */
  forget(session: Session): void {
    this.#leases.delete(session);
    if (this.#leases.size === 0 && this.#sweeper !== undefined) {
      this.clock.clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  #lease(session: Session, pattern: string, expiresAt: number): void {
    let leases = this.#leases.get(session);
    if (leases === undefined) this.#leases.set(session, (leases = new Map()));
    leases.set(pattern, expiresAt);
    this.#sweeper ??= this.clock.setInterval(() => this.#sweep(), SWEEP_MS);
  }

  #sweep(): void {
    const now = this.clock.now();
    for (const [session, leases] of [...this.#leases]) {
      for (const [pattern, expiresAt] of leases) {
        if (expiresAt > now) continue;
        this.release(session, [pattern]);
        if (!session.isClosed && session.subscriptions.has(pattern)) this.end(session, pattern);
      }
    }
  }
}

/** The notice that ends a subscription, as a delivery: it keeps its place among the session's messages. */
export function subscriptionEnded(pattern: string, reason: string, now: number): Delivery {
  const notice = new Delivery({ id: '', channel: '/meta/unsubscribe', data: { successful: true, subscription: pattern, ext: { herald: { reason } } }, publishedAt: now });
  // Not a published message: no publish→deliver latency to measure.
  notice.sent = true;
  return notice;
}
