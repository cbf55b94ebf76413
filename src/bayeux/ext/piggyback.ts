/**
 * @module
 * Herald's piggyback extension: deliveries ride on the replies to a client's other requests
 * (publishes, subscribes, service calls — and, through the server's `herald.piggyback`, the
 * application's own endpoints) while no connect is held for it, instead of waiting for its next
 * poll. Only for clients that can take them in order:
 * - the handshake asks with `ext: {herald: {piggyback: true}}`, and its reply says yes the same way;
 * - each request that may carry deliveries says so with `ext.herald.piggyback: true` on one of its
 *   messages. The client marks a request only while none of its connects is out and no other marked
 *   request is: two replies that both carry deliveries could arrive in either order, and a
 *   client that drops what it has seen (ids increase per channel) would then lose the older ones.
 * A held connect takes them instead (it is the reply the client waits for); so does a push stream.
 * Acknowledged delivery (ext/ack.ts) numbers only connect replies: its sessions never piggyback.
 * Gaps to report go first, on a connect reply: none piggyback while any is pending.
 */
import type { Session } from '../../core/session.js';
import { isObject } from '../message.js';
import type { BayeuxMessage } from '../message.js';

/** `ext.herald.piggyback === true` on a message: a handshake offering it, or a request able to take deliveries now. */
export function asksPiggyback(message: BayeuxMessage): boolean {
  return isObject(message.ext) && isObject(message.ext.herald) && message.ext.herald.piggyback === true;
}

/** Whether what is queued for `session` may leave now on a reply that is not a connect's. */
export function canPiggyback(session: Session): boolean {
  return session.piggybacks && !session.isClosed && !session.isHeld && session.stream === undefined && !session.connectOnly && !session.hasGaps;
}
