/**
 * @module
 * `/meta/disconnect` (Bayeux 1.0 §"disconnect").
 * Request  MUST: channel, clientId. MAY: ext, id.
 * Response MUST: channel, successful. MAY: clientId, error, ext, id.
 * The server forgets the session at once and releases its held connect; it never relies on a
 * disconnect arriving (sessions also expire). Only a goodbye that comes from the client itself
 * advises that connect `none`: one sent from elsewhere (another tab, a proxy, anyone who learnt the
 * clientId) tells the client to handshake again, so it is not stranded.
 */
import type { RequestContext } from '../core/protocol.js';
import type { Session } from '../core/session.js';
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
  deps.sessions.close(session, fromTheClient(session, batch.context) ? 'client' : 'ended_elsewhere');
  return [{ ...reply, successful: true }];
};

/**
 * A goodbye is the client's own when it comes on the WebSocket its session is bound to, or over
 * HTTP with the browser cookie the session was created under (its held connect is on another
 * request of the same browser). Nothing else proves it: a clientId alone is not the client.
 */
function fromTheClient(session: Session, context: RequestContext): boolean {
  if (context.stream !== undefined) return session.stream === context.stream;
  return context.browserId !== undefined && context.browserId === session.browserId;
}
