/**
 * @module
 * What lets a client keep a server subscription across its reconnects. A server subscription is
 * made for live sessions; a client that loses its connection comes back as a new session and
 * subscribes again itself, through the access rules — which the backend's subscription bypassed.
 * So each server subscription hands the client a grant: the channel, the subject the session acts
 * as, when it was issued and until when it holds (a day), signed by the node (HMAC, with the key
 * `/sign` tokens are signed with: every node sharing the publish key accepts it). Presented with
 * `/meta/subscribe`, a grant stands in for the access rules, and the reply carries a fresh one.
 *
 * An unsubscribe withdraws the grants issued before it — of the user, or of the session named —
 * on every node that hears it, so a client that was between two sessions then cannot come back
 * subscribed. Withdrawals are kept in memory for a grant's life; with Redis the engine also keeps
 * them there for that long and hands them to nodes started afterwards (redis-control.ts).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from './clock.js';
import type { SubscriptionTarget } from './control.js';

/** How long a grant lets a client come back subscribed: renewed on each use. */
export const GRANT_TTL_MS = 24 * 3600 * 1000;
/** Withdrawals remembered at most (the oldest go first): a bound on an operator's flood. */
const MAX_WITHDRAWALS = 100_000;

interface GrantClaims {
  /** Channel or pattern. */
  readonly c: string;
  /** The subject the session acted as; null: anonymous. */
  readonly s: string | null;
  /** The public id of the session the grant was issued to. */
  readonly o: string;
  /** Issued and expires, ms since the epoch. */
  readonly i: number;
  readonly e: number;
}

export class ServerGrants {
  /** When grants were last withdrawn, by `u|s` + name + channel; in order of withdrawal. */
  readonly #withdrawn = new Map<string, number>();

  constructor(
    private readonly secret: Uint8Array,
    private readonly clock: Clock,
  ) {}

  /** A grant for `channel` to the session `sessionId`, acting as `subject`. */
  issue(channel: string, subject: string | undefined, sessionId: string): string {
    const now = this.clock.now();
    const claims: GrantClaims = { c: channel, s: subject ?? null, o: sessionId, i: now, e: now + GRANT_TTL_MS };
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${payload}.${this.#sign(payload)}`;
  }

  /** Whether `grant` lets a session acting as `subject` subscribe to `channel` now. */
  admits(grant: unknown, channel: string, subject: string | undefined): boolean {
    if (typeof grant !== 'string' || grant.length > 4096) return false;
    const [payload, signature, extra] = grant.split('.');
    if (payload === undefined || signature === undefined || extra !== undefined) return false;
    const expected = Buffer.from(this.#sign(payload));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return false;
    let claims: GrantClaims;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as GrantClaims;
    } catch {
      return false;
    }
    if (claims.c !== channel || claims.s !== (subject ?? null) || !(claims.e > this.clock.now())) return false;
    const byUser = claims.s === null ? undefined : this.#withdrawn.get(key({ user: claims.s }, channel));
    const bySession = this.#withdrawn.get(key({ session: claims.o }, channel));
    return !(byUser !== undefined && byUser >= claims.i) && !(bySession !== undefined && bySession >= claims.i);
  }

  /** Grants of `target` for `channel` issued until `at` (default: now) no longer admit anyone. */
  withdraw(target: SubscriptionTarget, channel: string, at = this.clock.now()): void {
    const now = this.clock.now();
    const name = key(target, channel);
    const known = this.#withdrawn.get(name);
    this.#withdrawn.delete(name);
    this.#withdrawn.set(name, Math.max(at, known ?? at));
    for (const [oldest, at] of this.#withdrawn) {
      if (this.#withdrawn.size <= MAX_WITHDRAWALS && at > now - GRANT_TTL_MS) break;
      this.#withdrawn.delete(oldest);
    }
  }

  #sign(payload: string): string {
    return createHmac('sha256', this.secret).update(`herald server subscription\n${payload}`).digest('base64url');
  }
}

function key(target: SubscriptionTarget, channel: string): string {
  return 'user' in target ? `u\n${target.user}\n${channel}` : `s\n${target.session}\n${channel}`;
}
