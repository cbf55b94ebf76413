/**
 * @module
 * Publishing (Bayeux 1.0 §"publish"): any message on a non-meta channel.
 * Request  MUST: channel, data. MAY: clientId (absent = a publish from outside any session), id, ext.
 * Response MUST: channel, successful. MAY: id, error, ext.
 *
 * Broadcast channels go through the engine to every subscriber (the publisher included, if
 * subscribed), once: a publish a client sends again with the same id is acknowledged, not repeated. Service channels go to their handler, and its result back to the sender only.
 */
import type { Principal } from '../core/access.js';
import type { ParsedChannel } from '../core/channel.js';
import { isSerialisable } from '../core/message.js';
import { describeRefusal } from '../core/publisher.js';
import type { PublishRefusal } from '../core/publisher.js';
import type { Session } from '../core/session.js';
import { HANDSHAKE_ADVICE } from './advice.js';
import { BayeuxErrors } from './errors.js';
import { authenticate, refusalReason, tokenIn } from './ext/auth.js';
import type { Batch, BayeuxDeps } from './handler.js';
import { findSession } from './handler.js';
import { askHook, hookDecides, hookRefusal } from './hooks.js';
import type { Refusal } from './hooks.js';
import { replyTo } from './message.js';
import type { ServiceRequest } from './services.js';
import type { BayeuxMessage, BayeuxReply } from './message.js';

export async function handlePublish(message: BayeuxMessage, channel: ParsedChannel, batch: Batch, deps: BayeuxDeps): Promise<BayeuxReply[]> {
  const reply = replyTo(channel.name, message);
  const fail = (error: string, extra: Partial<BayeuxReply> = {}): BayeuxReply[] => [{ ...reply, successful: false, error, ...extra }];

  if (channel.kind === 'meta') return fail(BayeuxErrors.forbiddenChannel(channel.name));
  if (channel.wildcard !== 'none') return fail(BayeuxErrors.invalidChannel(channel.name));
  let clientId: string | undefined;
  let session: Session | undefined;
  let principal: Principal | undefined;
  if (message.clientId !== undefined) {
    session = findSession(message, batch, deps);
    if (session === undefined) return fail(BayeuxErrors.sessionUnknown(), { advice: HANDSHAKE_ADVICE });
    session.touch();
    clientId = session.id;
    principal = session.principal;
    if (!session.allowMessage()) {
      deps.sessions.counters.hit('message_rate');
      return fail(BayeuxErrors.rateLimited(session.messageRate));
    }
  } else if (!deps.options.allowPublishWithoutSession || batch.context.simpleRequest === true) {
    // Without a session, only a JSON POST may publish: any page could make the others (CSRF).
    return fail(BayeuxErrors.missing('clientId'));
  } else if (deps.addressRates?.allow(batch.context.remoteAddress) === false) {
    // No session holds a bucket, so the sender's address does: else one POST could carry any number.
    return fail(BayeuxErrors.rateLimited(deps.addressRates.rate));
  }
  const hooked = hookDecides(deps, 'publish', channel.name);
  if (session === undefined || tokenIn(message) !== undefined) {
    // A publish may carry a token of its own (a sessionless one has nothing else to show).
    const auth = await authenticate(message, batch.context, deps.access);
    // Where the backend decides, a credential that is not a token of Herald's is the hook's to judge.
    if (!auth.ok && !(hooked && auth.reason === 'invalid')) return fail(BayeuxErrors.publishDenied(refusalReason(auth)));
    if (auth.ok && auth.principal !== undefined) principal = auth.principal;
  }
  let { data } = message;
  if (!deps.access.allows(principal, 'publish', channel.name)) {
    if (!hooked) return fail(BayeuxErrors.publishDenied(channel.name));
    if (data === undefined) return fail(BayeuxErrors.missing('data'));
    // The backend is asked only about data that could be published.
    const refusal = deps.publisher.checkData(data);
    if (refusal !== undefined) return fail(refusalError(refusal));
    const answer = await askHook(deps, 'publish', message, batch, { channel: channel.name, data, sub: principal?.subject, session });
    if (!answer.allow) return fail(...refusalArgs(hookRefusal(answer, 'publish')));
    if (answer.replace !== undefined) data = answer.replace.data;
  }
  if (data === undefined) return fail(BayeuxErrors.missing('data'));

  if (channel.kind === 'service') {
    const refusal = deps.publisher.checkData(data);
    if (refusal !== undefined) return fail(refusalError(refusal));
    return callService(message, channel.name, data, { clientId, subject: principal?.subject, claims: principal?.claims }, reply, deps);
  }
  if (session !== undefined && reply.id !== undefined && session.publishedRecently(reply.id)) return [{ ...reply, successful: true }];
  const outcome = await deps.publisher.publish(channel.name, data);
  if (!outcome.ok) return fail(refusalError(outcome));
  // Remembered only once stored: a retry after a failure (503::engine_unavailable) must publish.
  if (session !== undefined && reply.id !== undefined) session.rememberPublish(reply.id);
  // A session that asked for ids learns its message's, as a REST publisher does.
  if (session?.messageIds === true) return [{ ...reply, successful: true, ext: { herald: { id: outcome.message.id } } }];
  return [{ ...reply, successful: true }];
}

function refusalArgs(refusal: Refusal): [string, Partial<BayeuxReply>] {
  return [refusal.error, refusal.advice === undefined ? {} : { advice: refusal.advice }];
}

function refusalError(refusal: PublishRefusal): string {
  switch (refusal.reason) {
    case 'invalid_channel':
      return BayeuxErrors.invalidChannel(refusal.channel);
    case 'invalid_data':
      return BayeuxErrors.invalidData();
    case 'too_large':
      return BayeuxErrors.messageTooLarge(refusal.size, refusal.max);
    // Bayeux publishes carry no idempotency key (a resent publish is recognised by its id instead).
    case 'invalid_idempotency_key':
    case 'idempotency_conflict':
      return `400::${describeRefusal(refusal)}`;
  }
}

async function callService(
  message: BayeuxMessage,
  channel: string,
  data: unknown,
  sender: Pick<ServiceRequest, 'clientId' | 'subject' | 'claims'>,
  reply: BayeuxReply,
  deps: BayeuxDeps,
): Promise<BayeuxReply[]> {
  const handler = deps.services.find(channel);
  if (handler === undefined) return [{ ...reply, successful: true }];
  let result: unknown;
  try {
    result = await handler({ channel, data, ...sender });
  } catch {
    return [{ ...reply, successful: false, error: BayeuxErrors.serviceFailed(channel) }];
  }
  if (result === undefined) return [{ ...reply, successful: true }];
  if (!isSerialisable(result)) return [{ ...reply, successful: false, error: BayeuxErrors.serviceFailed(channel) }];
  // The result travels as a message carrying the request id and `successful`, so CometD's
  // remoteCall matches it by id, and a Faye client delivers it to its subscription on the service
  // channel. The plain acknowledgement follows for CometD's publish callback, which ignores
  // messages that carry data.
  return [{ ...reply, successful: true, data: result }, { ...reply, successful: true }];
}
