/**
 * @module
 * The control plane over plain HTTP, behind the publish key (the REST gate's `manage` action;
 * without a key, loopback clients only):
 * - `POST /admin/disconnect` `{session|user|channel, reason?, reconnect?}` ends the sessions named
 *   on every node, telling their clients to come back (`reconnect: true`, the default) or not;
 * - `POST /admin/revoke` `{jti|sub, before?, until}` revokes tokens on every node and ends the
 *   sessions and streams acting with one.
 * - `POST /admin/subscribe` / `POST /admin/unsubscribe` `{user|session, channel}` put the live
 *   Bayeux sessions named on a channel (or take them off it) on every node.
 * They answer `{ok: true, closedHere}` (`reachedHere` for subscriptions): how many sessions this
 * node acted on (the others act on their own within a round trip through the engine). Bad
 * requests get a 400 naming the problem.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../core/clock.js';
import { readDisconnect, readRevocation, readServerSubscription } from '../core/control.js';
import type { ControlPlane } from '../core/control-plane.js';
import { HttpError, isJson, parseJson, readBody, sendError, sendJson, sendRefusal } from '../transports/http.js';
import type { RestGate } from './rest-gate.js';

export const ADMIN_PREFIX = '/admin/';
export const DISCONNECT_PATH = '/admin/disconnect';
export const REVOKE_PATH = '/admin/revoke';
export const SUBSCRIBE_PATH = '/admin/subscribe';
export const UNSUBSCRIBE_PATH = '/admin/unsubscribe';
const COMMAND_PATHS = [DISCONNECT_PATH, REVOKE_PATH, SUBSCRIBE_PATH, UNSUBSCRIBE_PATH];

/** A control request is small: a few names and times. */
const MAX_CONTROL_BODY_BYTES = 4096;

export class RestControl {
  constructor(
    private readonly control: ControlPlane,
    private readonly gate: RestGate,
    private readonly clock: Clock,
  ) {}

  async serve(req: IncomingMessage, res: ServerResponse, pathname: string, query: URLSearchParams, headers: Record<string, string>): Promise<void> {
    if (!COMMAND_PATHS.includes(pathname)) {
      return sendError(res, 404, `no such path: ${pathname.slice(0, 100)} (use ${COMMAND_PATHS.join(', ')}, /admin/channels, /admin/nodes or /admin/users/{sub}/sessions)`, headers);
    }
    const verdict = await this.gate(req, query, 'manage', pathname);
    if (!verdict.ok) return sendRefusal(res, verdict, headers);
    if (req.method !== 'POST') return sendError(res, 405, `method ${req.method} not allowed: use POST with a JSON body`, { ...headers, Allow: 'POST, OPTIONS' });
    let body: unknown;
    try {
      if (!isJson(req.headers['content-type'])) throw new HttpError(415, 'send the request as JSON (Content-Type: application/json)');
      const text = (await readBody(req, MAX_CONTROL_BODY_BYTES)).toString('utf8');
      if (text.length === 0) throw new HttpError(400, 'empty body: send a JSON object');
      body = parseJson(text);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return sendError(res, error.status, error.message, error.status === 413 ? { ...headers, Connection: 'close' } : headers);
    }
    if (pathname === DISCONNECT_PATH) {
      const command = readDisconnect(body);
      if (!command.ok) return sendError(res, 400, command.error, headers);
      const closedHere = await this.control.disconnect(command.value);
      return sendJson(res, 200, JSON.stringify({ ok: true, closedHere }), headers);
    }
    if (pathname === SUBSCRIBE_PATH || pathname === UNSUBSCRIBE_PATH) {
      const command = readServerSubscription(body, pathname === SUBSCRIBE_PATH ? 'subscribe' : 'unsubscribe');
      if (!command.ok) return sendError(res, 400, command.error, headers);
      const reachedHere = await this.control.serverSubscription(command.value);
      return sendJson(res, 200, JSON.stringify({ ok: true, reachedHere }), headers);
    }
    const revocation = readRevocation(body, this.clock.now());
    if (!revocation.ok) return sendError(res, 400, revocation.error, headers);
    const closedHere = await this.control.revoke(revocation.value);
    sendJson(res, 200, JSON.stringify({ ok: true, closedHere }), headers);
  }
}
