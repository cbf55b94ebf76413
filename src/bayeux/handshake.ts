/**
 * @module
 * `/meta/handshake` (Bayeux 1.0 §"handshake").
 * Request  MUST: channel, version, supportedConnectionTypes. MAY: minimumVersion, ext, id.
 * Response MUST: channel, version, supportedConnectionTypes, clientId, successful.
 *          MAY: minimumVersion, advice, ext, id. No common connection type ⇒ unsuccessful.
 */
import type { Principal } from '../core/access.js';
import { randomId } from '../core/ids.js';
import { HANDSHAKE_ADVICE, NONE_ADVICE, retryAdvice } from './advice.js';
import { BayeuxErrors } from './errors.js';
import { enableAck, wantsAck } from './ext/ack.js';
import { authenticate, carriesToken, refusalReason } from './ext/auth.js';
import { wantsIds } from './ext/resume.js';
import type { Batch, BayeuxDeps, MetaHandler } from './handler.js';
import { replyTo } from './message.js';
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
  if (!carriesToken(message, batch.context)) return [open(message, reply, undefined, batch, deps)];
  return authenticate(message, batch.context, deps.access).then((auth) => {
    if (auth.ok) return [open(message, reply, auth.principal, batch, deps)];
    // A forged token will not improve by retrying; an expired one may, if the client fetches another.
    const advice = auth.reason === 'expired' ? { ...HANDSHAKE_ADVICE, interval: 1000 } : NONE_ADVICE;
    return [{ ...reply, error: BayeuxErrors.handshakeDenied(refusalReason(auth)), advice }];
  });
};

/** Creates the session a valid handshake asked for. */
function open(message: BayeuxMessage, reply: BayeuxReply, principal: Principal | undefined, batch: Batch, deps: BayeuxDeps): BayeuxReply {
  const { options } = deps;
  const session = deps.sessions.create(batch.context.remoteAddress);
  session.principal = principal;
  const { context } = batch;
  if (context.browserId !== undefined) session.browserId = context.browserId;
  else if (context.canSetCookie) session.browserId = batch.newBrowserId = randomId();
  batch.session = session;
  const success: BayeuxReply = { ...reply, clientId: session.id, successful: true, advice: retryAdvice(options) };
  const ext: Record<string, unknown> = {};
  if (wantsAck(message)) {
    enableAck(session);
    ext.ack = true;
  }
  if (wantsIds(message)) {
    session.messageIds = true;
    ext.herald = { ids: true };
  }
  if (Object.keys(ext).length > 0) success.ext = ext;
  return success;
}
