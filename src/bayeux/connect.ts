/**
 * @module
 * `/meta/connect` (Bayeux 1.0 §"connect"): the long-poll that carries messages to the client.
 * Request  MUST: channel, clientId, connectionType. MAY: ext, id, advice.timeout (0 = answer now).
 * Response MUST: channel, successful. MAY: error, advice, ext, clientId, id.
 *
 * A connect is held only when it is alone in its request, the client did not ask for timeout 0,
 * it is not the session's first, nothing is queued, and its browser holds no other long-poll.
 * Otherwise it is answered at once with whatever is queued.
 */
import type { RequestContext } from '../core/protocol.js';
import type { ResumeReason, Session } from '../core/session.js';
import { HANDSHAKE_ADVICE, NONE_ADVICE, closedSession, multipleClientsAdvice, retryAdvice } from './advice.js';
import type { Delivery } from '../core/message.js';
import { BayeuxErrors } from './errors.js';
import { nextBatch, receiveAck, usesAck } from './ext/ack.js';
import { refusalReason, tokenIn } from './ext/auth.js';
import { asksToResume, resumeChannels } from './ext/resume.js';
import type { Batch, BayeuxDeps, HeldConnect, MetaHandler } from './handler.js';
import { timesyncAsked } from './ext/timesync.js';
import { findSession } from './handler.js';
import { describe, echoId, isObject, replyTo } from './message.js';
import type { BayeuxMessage, BayeuxReply } from './message.js';

const EVENTSOURCE = 'eventsource';
const WEBSOCKET = 'websocket';

/** Only HTTP long-polls use up a browser's few connections per host; a WebSocket does not. */
export function occupiesBrowserConnection(context: RequestContext): boolean {
  return context.connectionType !== WEBSOCKET;
}

export const handleConnect: MetaHandler = (message, batch, deps) => {
  const reply = replyTo('/meta/connect', message);
  if (message.clientId === undefined) return [{ ...reply, successful: false, error: BayeuxErrors.missing('clientId') }];
  const session = findSession(message, batch, deps);
  if (session === undefined) {
    // Closed for good while no connect was held (between two polls): said now, or the client
    // would take the unknown session for one that expired and come back.
    const departed = deps.sessions.departed(message.clientId);
    if (departed !== undefined) return [{ ...reply, ...closedSession(departed.reason, departed.note) }];
    return [{ ...reply, successful: false, error: BayeuxErrors.sessionUnknown(), advice: HANDSHAKE_ADVICE }];
  }
  session.touch();
  const { connectionType } = message;
  if (connectionType === undefined) return [{ ...reply, successful: false, error: BayeuxErrors.missing('connectionType') }];
  if (typeof connectionType !== 'string' || !deps.options.connectionTypes.includes(connectionType)) {
    return [{ ...reply, successful: false, error: BayeuxErrors.connectionTypes([describe(connectionType)]), advice: HANDSHAKE_ADVICE }];
  }

  if (!session.connectArrived(batch.context.stream)) {
    // Deliveries written to a connection that died may never have arrived, and the client cannot
    // tell: it handshakes again and resumes from history (ext.herald.since), or at least knows.
    deps.sessions.close(session, 'connection_lost');
    return [{ ...reply, ...closedSession('connection_lost') }];
  }
  batch.session = session;
  session.transport = connectionType;
  if (tokenIn(message) !== undefined) return refreshToken(message, session, deps).then((refused) => refused ?? proceed(message, connectionType, session, batch, deps));
  return proceed(message, connectionType, session, batch, deps);
};

/** A session whose token expired is closed by the session sweep, which also answers its held connect. */
function proceed(message: BayeuxMessage, connectionType: string, session: Session, batch: Batch, deps: BayeuxDeps): BayeuxReply[] | Promise<BayeuxReply[]> {
  if (asksToResume(message)) {
    session.holdBack();
    return resumeChannels(session, deps.engine, message).then(
      (gaps) => {
        session.release();
        return answerConnect(message, connectionType, session, batch, deps, gaps);
      },
      (error: unknown) => {
        session.release();
        throw error;
      },
    );
  }
  return answerConnect(message, connectionType, session, batch, deps, []);
}

/**
 * A connect carrying `ext.auth.token` replaces the session's token, if it verifies and names the
 * same subject. An expired one changes nothing; a forged one, or another subject's, ends the session
 * (unless a connect hook is set: then one that is not Herald's is the backend's, and changes nothing).
 */
async function refreshToken(message: BayeuxMessage, session: Session, deps: BayeuxDeps): Promise<BayeuxReply[] | undefined> {
  const check = await deps.access.verify(tokenIn(message)!);
  if (!check.ok && check.reason === 'expired') return undefined;
  // With a connect hook, `ext.auth.token` may be the backend's own credential, which the hook judged at the handshake.
  if (!check.ok && check.reason === 'invalid' && deps.hooks.has('connect')) return undefined;
  if (check.ok && check.principal.subject === session.principal?.subject) {
    session.principal = check.principal;
    return undefined;
  }
  deps.sessions.close(session, !check.ok && check.reason === 'revoked' ? 'token_revoked' : 'token_refused');
  const reason = check.ok ? 'subject_changed' : refusalReason(check);
  return [{ ...replyTo('/meta/connect', message), successful: false, error: BayeuxErrors.tokenRefused(reason), advice: NONE_ADVICE }];
}

/** A valid connect from a known session: answered now or held. `gaps`: channels a resume could not fill. */
function answerConnect(message: BayeuxMessage, connectionType: string, session: Session, batch: Batch, deps: BayeuxDeps, resumeGaps: string[]): BayeuxReply[] {
  const reply = replyTo('/meta/connect', message);
  const gaps = session.hasGaps ? [...new Set(resumeGaps.concat(session.takeGaps()))] : resumeGaps;
  const first = session.connects === 0;
  session.connects++;
  const owed = receiveAck(session, message);
  if (connectionType === EVENTSOURCE) {
    // Faye's EventSource client posts its connects separately from the stream: answer at once and
    // space them out; deliveries travel down the stream.
    return [{ ...reply, successful: true, advice: { reconnect: 'retry', interval: deps.options.timeoutMs, timeout: 0 } }];
  }
  const timeoutMs = holdTimeout(message, deps);
  const canHold = !first && !owed && gaps.length === 0 && timeoutMs > 0 && batch.size === 1 && batch.held === undefined && session.queueLength === 0;
  let advice = retryAdvice(deps.options);
  if (canHold) {
    const browserId = session.browserId;
    const limit = deps.options.maxSessionsPerBrowser;
    const crowded = occupiesBrowserConnection(batch.context) && browserId !== undefined && limit >= 0 && deps.browsers.othersHolding(browserId, session) >= limit;
    if (!crowded) {
      batch.held = { session, id: echoId(message), timesync: timesyncAsked(message, Date.now()), timeoutMs };
      return [];
    }
    advice = multipleClientsAdvice(deps.options, deps.options.multiSessionIntervalMs);
  }
  const answer: BayeuxReply = { ...reply, successful: true, advice };
  session.connectAnswered(gaps.length);
  const ext: Record<string, unknown> = {};
  if (gaps.length > 0) ext.herald = { gaps };
  if (usesAck(session)) {
    const { deliveries, batch: number } = nextBatch(session, session.drain());
    batch.taken = deliveries;
    ext.ack = number;
  } else if (session.stream === undefined) {
    // With a stream attached, queued messages leave through it, in order; this reply carries none.
    batch.deliverFrom = session;
  }
  if (Object.keys(ext).length > 0) answer.ext = ext;
  return [answer];
}

/** The server's timeout, shortened when the client asks for less (servers SHOULD honour it). */
function holdTimeout(message: Record<string, unknown>, deps: BayeuxDeps): number {
  const advice = message.advice;
  const asked = isObject(advice) ? advice.timeout : undefined;
  if (typeof asked === 'number' && Number.isFinite(asked) && asked >= 0) return Math.min(asked, deps.options.timeoutMs);
  return deps.options.timeoutMs;
}

/** The reply to a held connect once it resumes, and the deliveries that follow it (none if it was replaced). */
export function completeHeldConnect(held: HeldConnect, reason: ResumeReason, deps: BayeuxDeps): { reply: BayeuxReply; deliveries: Delivery[] } {
  let reply = heldConnectReply(held, reason, deps);
  // A replaced connect leaves the queue, and any gaps to report, to the connect that replaced it.
  const handsOver = reason === 'replaced' || reason === 'closed';
  const fresh = handsOver ? [] : held.session.drain();
  // Channels that lost messages to the slow-consumer policy (drop-oldest), as a resume reports them.
  const gaps = handsOver ? [] : held.session.takeGaps();
  held.session.connectAnswered(fresh.length + gaps.length);
  if (gaps.length > 0) reply = { ...reply, ext: { herald: { gaps } } };
  if (!usesAck(held.session) || reason === 'closed') return { reply, deliveries: fresh };
  const { deliveries, batch } = nextBatch(held.session, fresh);
  return { reply: { ...reply, ext: { ...(reply.ext as object | undefined), ack: batch } }, deliveries };
}

function heldConnectReply(held: HeldConnect, reason: ResumeReason, deps: BayeuxDeps): BayeuxReply {
  const reply: BayeuxReply = { channel: '/meta/connect' };
  if (held.id !== undefined) reply.id = held.id;
  const closeReason = held.session.closeReason;
  if (reason === 'closed' && closeReason !== undefined) return { ...reply, ...closedSession(closeReason, held.session.closeNote) };
  // Filled in place, not spread: held connects are answered by the thousand in one go.
  reply.successful = true;
  reply.advice = retryAdvice(deps.options);
  return reply;
}
