/**
 * @module
 * A subscription to a pattern that spans channels its subscriber may not read (`/chat/**` beside
 * a rule closing `/chat/private/**`) is accepted, and each message it would deliver is checked by
 * the channel's own name: the subscriber receives exactly what it could have subscribed to channel
 * by channel. Only such subscriptions carry a guard, decided once at subscribe time, so the rest
 * of the fan-out pays nothing; within one fan-out each bearer is judged once per channel.
 */
import type { AccessPolicy, Principal } from './access.js';
import type { Session } from './session.js';

/** Verdicts already reached in one fan-out (one channel): may this bearer subscribe to it by name? */
export type Verdicts = Map<Principal | undefined, boolean>;

export class SubscriptionGuard {
  constructor(
    private readonly access: AccessPolicy,
    /** A token given for this subscription only (Bayeux `ext.auth.token` on /meta/subscribe). */
    private readonly extra: Principal | undefined,
  ) {}

  /** Whether a message on `channel` may reach a session acting as `principal` through this subscription. */
  admits(principal: Principal | undefined, channel: string, verdicts: Verdicts): boolean {
    return this.#verdict(principal, channel, verdicts) || (this.extra !== undefined && this.#verdict(this.extra, channel, verdicts));
  }

  #verdict(principal: Principal | undefined, channel: string, verdicts: Verdicts): boolean {
    let verdict = verdicts.get(principal);
    if (verdict === undefined) verdicts.set(principal, (verdict = this.access.allows(principal, 'subscribe', channel)));
    return verdict;
  }
}

export type SubscribeDecision = { ok: true; guard: SubscriptionGuard | undefined } | { ok: false };

/**
 * Whether `principal` (with `extra`, a token given for this subscription only) may subscribe to
 * `pattern`: refused when no channel under it could reach them; accepted without a guard when
 * every channel could; else accepted with a guard that checks each delivery.
 */
export function decideSubscription(access: AccessPolicy, principal: Principal | undefined, extra: Principal | undefined, pattern: string): SubscribeDecision {
  const own = access.reach(principal, 'subscribe', pattern);
  const theirs = extra === undefined ? 'none' : access.reach(extra, 'subscribe', pattern);
  if (own === 'none' && theirs === 'none') return { ok: false };
  if (own === 'all' || theirs === 'all') return { ok: true, guard: undefined };
  return { ok: true, guard: new SubscriptionGuard(access, extra) };
}

/**
 * Whether a message on `channel` reaches `session`: through any subscription among `patterns`
 * (the channel's expansion) that has no guard, or whose guard admits it.
 */
export function guardsAdmit(session: Session, channel: string, patterns: readonly string[], verdicts: Verdicts): boolean {
  for (const pattern of patterns) {
    if (!session.subscriptions.has(pattern)) continue;
    const guard = session.guards?.get(pattern);
    if (guard === undefined || guard.admits(session.principal, channel, verdicts)) return true;
  }
  return false;
}
