/**
 * @module
 * CometD's message acknowledgement extension (BAYEUX.md §2.3, §5 item 38): guaranteed delivery over
 * lossy long-polls. A client that handshakes with `ext: {ack: true}` gets `ext: {ack: true}` back;
 * from then on its messages travel only on connect replies, each reply numbered (`ext.ack: <batch>`),
 * and every connect says which batch arrived last. What the client has not acknowledged is sent
 * again, in order, ahead of anything new — so a reply lost on the way costs nothing.
 * What awaits acknowledgement counts toward the session's queue limit (Session.unacknowledged):
 * a client that never acknowledges meets the slow-consumer policy instead of growing every reply.
 */
import type { Delivery } from '../../core/message.js';
import type { Session } from '../../core/session.js';
import { isObject } from '../message.js';
import type { BayeuxMessage } from '../message.js';

interface AckState {
  /** The number of the last batch sent. */
  batch: number;
  /** What that batch carried, until the client acknowledges it. */
  unacked: Delivery[];
}

const states = new WeakMap<Session, AckState>();

/** True when a handshake asks for acknowledged delivery. */
export function wantsAck(handshake: BayeuxMessage): boolean {
  return isObject(handshake.ext) && handshake.ext.ack === true;
}

export function enableAck(session: Session): void {
  states.set(session, { batch: 0, unacked: [] });
  session.connectOnly = true;
}

export function usesAck(session: Session): boolean {
  return states.has(session);
}

/**
 * Takes the acknowledgement a connect carries. True when the client still lacks messages it was
 * sent (its last reply was lost): the connect must then be answered at once, not held.
 */
export function receiveAck(session: Session, connect: BayeuxMessage): boolean {
  const state = states.get(session);
  if (state === undefined) return false;
  const ack = isObject(connect.ext) ? connect.ext.ack : undefined;
  if (typeof ack === 'number' && ack >= state.batch) state.unacked = [];
  session.unacknowledged = state.unacked.length;
  return state.unacked.length > 0;
}

/** The deliveries of the next connect reply, unacknowledged ones first, and that reply's batch number. */
export function nextBatch(session: Session, fresh: Delivery[]): { deliveries: Delivery[]; batch: number } {
  const state = states.get(session)!;
  if (fresh.length > 0 || state.unacked.length > 0) {
    state.unacked = state.unacked.length === 0 ? fresh : state.unacked.concat(fresh);
    state.batch++;
  }
  session.unacknowledged = state.unacked.length;
  return { deliveries: state.unacked, batch: state.batch };
}
