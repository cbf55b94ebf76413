/**
 * @module
 * `/meta/disconnect` (Bayeux 1.0 §"disconnect").
 * Request  MUST: channel, clientId. MAY: ext, id.
 * Response MUST: channel, successful. MAY: clientId, error, ext, id.
 * The server releases the held connect (advising `none`) and forgets the session at once; it never
 * relies on a disconnect arriving (sessions also expire).
 */
import { BayeuxErrors } from './errors.js';
import type { MetaHandler } from './handler.js';
import { findSession } from './handler.js';
import { replyTo } from './message.js';

export const handleDisconnect: MetaHandler = (message, batch, deps) => {
  const reply = replyTo('/meta/disconnect', message);
  if (message.clientId === undefined) return [{ ...reply, successful: false, error: BayeuxErrors.missing('clientId') }];
  const session = findSession(message, batch, deps);
  // A client that is leaving needs no advice to come back.
  if (session === undefined) return [{ ...reply, successful: false, error: BayeuxErrors.sessionUnknown() }];
  deps.sessions.close(session, 'client');
  return [{ ...reply, successful: true }];
};
