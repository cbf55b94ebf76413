/**
 * @module
 * `/meta/handshake` (Bayeux 1.0 §"handshake").
 * Request  MUST: channel, version, supportedConnectionTypes. MAY: minimumVersion, ext, id.
 * Response MUST: channel, version, supportedConnectionTypes, clientId, successful.
 *          MAY: minimumVersion, advice, ext, id. No common connection type ⇒ unsuccessful.
 */
import { randomId } from '../core/ids.js';
import { NONE_ADVICE, retryAdvice } from './advice.js';
import { BayeuxErrors } from './errors.js';
import { enableAck, wantsAck } from './ext/ack.js';
import { wantsIds } from './ext/resume.js';
import type { MetaHandler } from './handler.js';
import { replyTo } from './message.js';
import type { BayeuxReply } from './message.js';

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

  const session = deps.sessions.create();
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
  return [success];
};
