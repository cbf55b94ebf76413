/**
 * @module
 * `/meta/handshake` (Bayeux 1.0 §"handshake").
 * Request  MUST: channel, version, supportedConnectionTypes. MAY: minimumVersion, ext, id.
 * Response MUST: channel, version, supportedConnectionTypes, clientId, successful.
 *          MAY: minimumVersion, advice, ext, id. No common connection type ⇒ unsuccessful.
 */
import type { Principal } from '../core/access.js';
import { withHookSubject } from '../core/hooks.js';
import { randomId } from '../core/ids.js';
import { HANDSHAKE_ADVICE, NONE_ADVICE, retryAdvice } from './advice.js';
import { BayeuxErrors } from './errors.js';
import { enableAck, wantsAck } from './ext/ack.js';
import { authenticate, carriesToken, refusalReason } from './ext/auth.js';
import { asksPiggyback } from './ext/piggyback.js';
import { wantsIds } from './ext/resume.js';
import type { Batch, BayeuxDeps, MetaHandler } from './handler.js';
import { askHook, hookRefusal } from './hooks.js';
import { isObject, replyTo } from './message.js';
import type { BayeuxMessage, BayeuxReply } from './message.js';

export const BAYEUX_VERSION = '1.0';

export const handleHandshake: MetaHandler = (message, batch, deps) => {
  const { options } = deps;
  const reply: BayeuxReply = {
    ...replyTo('/meta/handshake', message),
    version: BAYEUX_VERSION,
    minimumVersion: BAYEUX_VERSION,
    supportedConnectionTypes: [...options.connectionTypes],
    successful: false,
  };
  const fail = (error: string): BayeuxReply[] => [{ ...reply, error, advice: NONE_ADVICE }];

  const { version, supportedConnectionTypes: offered } = message;
  if (version === undefined || version === null) return fail(BayeuxErrors.missing('version'));
  if (typeof version !== 'string' && typeof version !== 'number') return fail(BayeuxErrors.badRequest('version must be a string'));
  if (String(version).split('.')[0] !== '1') return fail(BayeuxErrors.versionMismatch(String(version)));
  if (offered === undefined) return fail(BayeuxErrors.missing('supportedConnectionTypes'));
  if (!Array.isArray(offered) || !offered.every((type) => typeof type === 'string')) {
    return fail(BayeuxErrors.badRequest('supportedConnectionTypes must be an array of strings'));
  }
  if (!offered.some((type) => options.connectionTypes.includes(type))) {
    return fail(BayeuxErrors.connectionTypes(offered as string[]));
  }

  if (deps.isDraining()) {
    // The next attempt comes on a new connection (draining closes each after its response): another node's.
    return [{ ...reply, error: BayeuxErrors.shuttingDown(), advice: { ...HANDSHAKE_ADVICE, interval: 500 } }];
  }
  if (deps.sessions.atAddressLimit(batch.context.remoteAddress)) {
    return [{ ...reply, error: BayeuxErrors.handshakeDenied('too_many_sessions_from_this_address'), advice: { ...HANDSHAKE_ADVICE, interval: 10_000 } }];
  }
  const hooked = deps.hooks.has('connect');
  if (!carriesToken(message, batch.context)) return hooked ? askThenOpen(message, reply, undefined, batch, deps) : [open(message, reply, undefined, batch, deps)];
  return authenticate(message, batch.context, deps.access).then((auth) => {
    // With a connect hook, a credential that is not a token of Herald's is the backend's to judge.
    if (auth.ok || (hooked && auth.reason === 'invalid')) {
      const principal = auth.ok ? auth.principal : undefined;
      return hooked ? askThenOpen(message, reply, principal, batch, deps) : [open(message, reply, principal, batch, deps)];
    }
    // A forged token will not improve by retrying; an expired one may, if the client fetches another.
    const advice = auth.reason === 'expired' ? { ...HANDSHAKE_ADVICE, interval: 1000 } : NONE_ADVICE;
    return [{ ...reply, error: BayeuxErrors.handshakeDenied(refusalReason(auth)), advice }];
  });
};

/**
 * Asks the connect hook, then opens the session it allows: under the subject it names, joined to
 * the channels it lists as server subscriptions (server-subscriptions.ts: each told by a notice
 * with a grant the client resumes it with), listed in the reply's `ext.herald.channels`.
 */
async function askThenOpen(message: BayeuxMessage, reply: BayeuxReply, principal: Principal | undefined, batch: Batch, deps: BayeuxDeps): Promise<BayeuxReply[]> {
  const decision = await askHook(deps, 'connect', message, batch, { sub: principal?.subject });
  if (!decision.allow) return [{ ...reply, ...hookRefusal(decision, 'connect') }];
  // The session may have been taken meanwhile by another handshake from this address.
  if (deps.sessions.atAddressLimit(batch.context.remoteAddress)) {
    return [{ ...reply, error: BayeuxErrors.handshakeDenied('too_many_sessions_from_this_address'), advice: { ...HANDSHAKE_ADVICE, interval: 10_000 } }];
  }
  const success = open(message, reply, withHookSubject(principal, decision), batch, deps);
  const channels = decision.channels ?? [];
  if (channels.length === 0) return [success];
  const session = batch.session!;
  try {
    const { serverSubscriptions } = deps;
    const target = { session: session.publicId };
    await Promise.all(
      channels.map((channel) => (serverSubscriptions === undefined ? deps.hub.subscribe(session, channel) : serverSubscriptions.apply([session], { kind: 'subscribe', target, channel }))),
    );
  } catch (error) {
    // The client never learns the session: it must not linger, counted against its address.
    deps.sessions.close(session, 'client');
    throw error;
  }
  const ext = isObject(success.ext) ? success.ext : {};
  const herald = isObject(ext.herald) ? ext.herald : {};
  return [{ ...success, ext: { ...ext, herald: { ...herald, channels: [...channels] } } }];
}

/** Creates the session a valid handshake asked for. */
function open(message: BayeuxMessage, reply: BayeuxReply, principal: Principal | undefined, batch: Batch, deps: BayeuxDeps): BayeuxReply {
  const { options } = deps;
  const session = deps.sessions.create(batch.context.remoteAddress);
  session.principal = principal;
  // An anonymous page may name itself for presence (a chat handle); a token's info is the token's.
  if (principal === undefined) session.handle = handshakeHandle(message);
  const { context } = batch;
  // Until its first connect says otherwise, the one the handshake came by (herald.on('session')).
  session.transport = context.connectionType;
  if (context.browserId !== undefined) session.browserId = context.browserId;
  else if (context.canSetCookie) session.browserId = batch.newBrowserId = randomId();
  batch.session = session;
  const success: BayeuxReply = { ...reply, clientId: session.id, successful: true, advice: retryAdvice(options) };
  const ext: Record<string, unknown> = {};
  if (wantsAck(message)) {
    enableAck(session);
    ext.ack = true;
  }
  const herald: Record<string, unknown> = {};
  if (wantsIds(message)) {
    session.messageIds = true;
    herald.ids = true;
  }
  // Acknowledged delivery numbers connect replies alone: such a session is not offered it.
  if (asksPiggyback(message) && !session.connectOnly) {
    session.piggybacks = true;
    herald.piggyback = true;
  }
  if (Object.keys(herald).length > 0) ext.herald = herald;
  if (Object.keys(ext).length > 0) success.ext = ext;
  return success;
}

/** `ext.herald.info` of a handshake: what an anonymous session shows in presence (size-capped there). */
function handshakeHandle(message: BayeuxMessage): unknown {
  const ext = isObject(message.ext) ? message.ext : {};
  return isObject(ext.herald) ? ext.herald.info : undefined;
}
