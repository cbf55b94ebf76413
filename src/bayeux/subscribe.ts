/**
 * @module
 * `/meta/subscribe` and `/meta/unsubscribe` (Bayeux 1.0 §"subscribe", §"unsubscribe").
 * Request  MUST: channel, clientId, subscription (a channel, a pattern, or an array of them). MAY: ext, id.
 * Response MUST: channel, successful, subscription (echoed as sent). MAY: error, advice, ext, clientId, id.
 *
 * `/meta/**` cannot be subscribed to. `/service/**` subscriptions succeed but are not recorded:
 * service messages go to their sender only (BAYEUX.md §6). An array is all-or-nothing. A pattern
 * some of whose channels the session may not read is accepted with a guard: those never arrive.
 */
import { isChannelName, parseChannel } from '../core/channel.js';
import type { Session } from '../core/session.js';
import { decideSubscription } from '../core/subscription-guard.js';
import type { SubscriptionGuard } from '../core/subscription-guard.js';
import { HANDSHAKE_ADVICE } from './advice.js';
import { refusalReason, tokenIn } from './ext/auth.js';
import { asksToResume, resumeSubscription } from './ext/resume.js';
import { BayeuxErrors } from './errors.js';
import type { Batch, BayeuxDeps, MetaHandler } from './handler.js';
import { findSession } from './handler.js';
import { askHook, hookDecides, hookRefusal } from './hooks.js';
import { replyTo } from './message.js';
import type { Advice, BayeuxMessage, BayeuxReply } from './message.js';

/** Bounds the work one message can ask for. */
export const MAX_SUBSCRIPTIONS_PER_MESSAGE = 256;

type Change = (session: Session, pattern: string, guard: SubscriptionGuard | undefined) => Promise<void>;

export const handleSubscribe: MetaHandler = (message, batch, deps) =>
  change('/meta/subscribe', message, batch, findSession(message, batch, deps), deps, (s, p, guard) => deps.hub.subscribe(s, p, guard), (s, subscription) =>
    resumeSubscription(s, deps.engine, subscription, message),
  );

export const handleUnsubscribe: MetaHandler = (message, batch, deps) =>
  change('/meta/unsubscribe', message, batch, findSession(message, batch, deps), deps, (s, p) => deps.hub.unsubscribe(s, p));

async function change(
  channel: string,
  message: BayeuxMessage,
  batch: Batch,
  session: Session | undefined,
  deps: BayeuxDeps,
  apply: Change,
  resume?: (session: Session, subscription: string | string[]) => Promise<boolean>,
): Promise<BayeuxReply[]> {
  const reply: BayeuxReply = replyTo(channel, message);
  const { subscription } = message;
  if (isEchoable(subscription)) reply.subscription = subscription;
  const fail = (error: string, extra: Partial<BayeuxReply> = {}): BayeuxReply[] => [{ ...reply, successful: false, error, ...extra }];

  if (message.clientId === undefined) return fail(BayeuxErrors.missing('clientId'));
  if (session === undefined) return fail(BayeuxErrors.sessionUnknown(), { advice: HANDSHAKE_ADVICE });
  session.touch();
  if (!session.allowMessage()) {
    deps.sessions.counters.hit('message_rate');
    return fail(BayeuxErrors.rateLimited(session.messageRate));
  }
  if (subscription === undefined) return fail(BayeuxErrors.missing('subscription'));
  if (!isEchoable(subscription) || (Array.isArray(subscription) && subscription.length === 0)) {
    return fail(BayeuxErrors.badRequest('subscription must be a channel or a non-empty array of channels'));
  }
  const patterns = Array.isArray(subscription) ? subscription : [subscription];
  if (patterns.length > MAX_SUBSCRIPTIONS_PER_MESSAGE) {
    return fail(BayeuxErrors.badRequest(`at most ${MAX_SUBSCRIPTIONS_PER_MESSAGE} subscriptions per message`));
  }
  const recorded: string[] = [];
  let allowed: Allowed | undefined;
  for (const pattern of patterns) {
    const parsed = parseChannel(pattern);
    if (parsed === undefined) return fail(BayeuxErrors.invalidSubscription(pattern));
    if (parsed.kind === 'meta') return fail(BayeuxErrors.forbiddenChannel(pattern));
    if (parsed.kind === 'broadcast') recorded.push(pattern);
  }
  const subscribing = channel === '/meta/subscribe';
  if (subscribing) {
    const decided = await decide(message, batch, session, recorded, deps);
    if ('denied' in decided) return fail(decided.denied, decided.advice === undefined ? {} : { advice: decided.advice });
    allowed = decided;
  } else {
    deps.tokenSubscriptions.release(session, recorded);
  }
  const resuming = resume !== undefined && asksToResume(message);
  // Where a later session may resume from, even if no message arrives on this one before it ends.
  // Taken before the subscription is live: a message published in between is then after it
  // (resumable), never at or before it while still on its way to this session.
  const wantsLast = subscribing && !resuming && session.messageIds && isChannelName(subscription) && recorded.length === 1;
  const last = wantsLast ? await deps.engine.position(subscription) : undefined;
  if (allowed !== undefined) {
    // Checked in the same turn as every pattern is recorded (hub.subscribe records synchronously,
    // then waits for the engine): a check before an await would let concurrent subscribes of one
    // session (other requests, other sockets) each pass it while the engine or a token check is
    // slow, and together exceed it.
    const max = deps.options.maxSubscriptions;
    if (session.subscriptions.size + recorded.filter((p) => !session.subscriptions.has(p)).length > max) {
      deps.sessions.counters.hit('subscriptions');
      return fail(BayeuxErrors.tooManySubscriptions(max));
    }
    deps.tokenSubscriptions.record(session, recorded, allowed.leased, allowed.expiresAt);
  }
  // A server subscription taken up again gets a fresh grant for the next time.
  const renewed = allowed?.granted === true ? { grant: deps.control!.grants.issue(subscription as string, session.principal?.subject, session.publicId) } : {};
  const succeed = (herald: Record<string, unknown>): BayeuxReply[] => {
    const ext = { ...herald, ...renewed };
    return [Object.keys(ext).length === 0 ? { ...reply, successful: true } : { ...reply, successful: true, ext: { herald: ext } }];
  };
  if (resuming) session.holdBack();
  try {
    await Promise.all(recorded.map((pattern) => apply(session, pattern, allowed?.guards.get(pattern))));
    if (resuming) return (await resume!(session, subscription)) ? succeed({}) : succeed({ gap: true });
  } finally {
    if (resuming) session.release();
  }
  return succeed(last === undefined ? {} : { last });
}

interface Allowed {
  readonly guards: Map<string, SubscriptionGuard | undefined>;
  readonly leased: string[];
  readonly expiresAt: number | undefined;
  /** Allowed by a server subscription's grant, not by the access rules. */
  readonly granted?: boolean;
}
type Decision = { denied: string; advice?: Advice } | Allowed;

/**
 * Whether the session may subscribe to `patterns`, and the guard each needs (undefined: none) when
 * the session may read only some channels under it. A token in the message (`ext.auth.token`, e.g.
 * from `POST /sign`) adds its grants for this subscription only: the patterns it widens are
 * `leased` until it expires (token-subscriptions.ts).
 */
async function decide(message: BayeuxMessage, batch: Batch, session: Session, patterns: readonly string[], deps: BayeuxDeps): Promise<Decision> {
  const { access } = deps;
  // A server subscription's grant (server-subscriptions.ts) stands in for the rules: the backend
  // that subscribed the client is trusted. One that no longer holds leaves it to the rules.
  const grant = (message.ext as { herald?: { grant?: unknown } } | undefined)?.herald?.grant;
  const only = patterns.length === 1 && message.subscription === patterns[0] ? patterns[0] : undefined;
  if (grant !== undefined && only !== undefined && deps.control?.grants.admits(grant, only, session.principal?.subject) === true) {
    return { guards: new Map([[only, undefined]]), leased: [], expiresAt: undefined, granted: true };
  }
  const token = tokenIn(message);
  let extra = token === undefined ? undefined : await access.verify(token);
  if (extra !== undefined && !extra.ok) {
    // Where the backend decides, a credential that is not a token of Herald's is the hook's to judge.
    if (extra.reason !== 'invalid' || !patterns.some((pattern) => hookDecides(deps, 'subscribe', pattern))) return { denied: BayeuxErrors.subscribeDenied(refusalReason(extra)) };
    extra = undefined;
  }
  const guards = new Map<string, SubscriptionGuard | undefined>();
  const leased: string[] = [];
  for (const pattern of patterns) {
    const decision = decideSubscription(access, session.principal, extra?.principal, pattern);
    if (!(decision.ok && decision.guard === undefined) && hookDecides(deps, 'subscribe', pattern)) {
      // What the rules and grants do not allow outright, the backend may allow, for the whole
      // pattern. If it does not, what they allow (part of it, with a guard) still stands.
      const answer = await askHook(deps, 'subscribe', message, batch, { channel: pattern, sub: session.principal?.subject, session });
      if (answer.allow) {
        guards.set(pattern, undefined);
        continue;
      }
      if (!decision.ok) {
        const refusal = hookRefusal(answer, 'subscribe');
        return { denied: refusal.error, ...(refusal.advice === undefined ? {} : { advice: refusal.advice }) };
      }
    }
    if (!decision.ok) return { denied: BayeuxErrors.subscribeDenied(pattern) };
    guards.set(pattern, decision.guard);
    if (extra !== undefined && access.reach(session.principal, 'subscribe', pattern) !== 'all' && access.reach(extra.principal, 'subscribe', pattern) !== 'none') leased.push(pattern);
  }
  return { guards, leased, expiresAt: extra?.principal.expiresAt };
}

function isEchoable(subscription: unknown): subscription is string | string[] {
  if (typeof subscription === 'string') return subscription.length <= 1024;
  return Array.isArray(subscription) && subscription.length <= MAX_SUBSCRIPTIONS_PER_MESSAGE && subscription.every((s) => typeof s === 'string' && s.length <= 1024);
}
