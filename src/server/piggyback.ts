/**
 * @module
 * `herald.piggyback(req, res, body)`: an application's own JSON reply that also carries what is
 * queued for the browser's Bayeux session, so a page that polls gets its messages with the answer
 * to a request it made anyway (a form's validation, say) instead of at its next poll.
 *
 * On the wire: the Herald client's `herald.fetch()` names its session in the `Herald-Session`
 * request header — a header another site's page cannot add without a CORS preflight the
 * application would have to allow, where a cookie alone would be sent by the browser for any site.
 * The clientId is the session's secret, checked as a Bayeux message's is (and against the
 * `BAYEUX_BROWSER` cookie when one comes). When the session may take deliveries now (no connect
 * held, no push stream: bayeux/ext/piggyback.ts) and some are queued, the reply is the envelope
 * `{"herald": [deliveries…], "body": <the application's body>}`, marked by the response header
 * `Herald-Deliveries: <count>`, which `herald.fetch()` takes off again. Otherwise — no header, a
 * wrong one, nothing queued — the reply is exactly the application's body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeraldError } from '../core/errors.js';
import type { RequestContext } from '../core/protocol.js';
import { readCookie } from '../transports/http.js';
import { BROWSER_COOKIE } from '../transports/long-polling.js';

/** The request header naming the session (Node lower-cases header names; the client sends `Herald-Session`). */
export const SESSION_HEADER = 'herald-session';
/** The response header marking an envelope, with the number of deliveries it carries. */
export const DELIVERIES_HEADER = 'Herald-Deliveries';
/** Longer than any clientId: a longer header names no session, and is not looked up. */
const MAX_SESSION_HEADER = 256;

/** Takes what is queued for a session, if the request may speak for it and it may have it now. */
export type TakeDeliveries = (clientId: string, context: RequestContext) => { json: string; count: number } | undefined;

export function sendPiggybacked(req: IncomingMessage, res: ServerResponse, body: unknown, take: TakeDeliveries): void {
  const json = JSON.stringify(body);
  if (json === undefined) throw new HeraldError('HERALD_ERR_INVALID_DATA', 'piggyback needs a body that is JSON (not undefined, a function or a symbol)');
  if (res.headersSent) throw new HeraldError('HERALD_ERR_INVALID_REQUEST', 'piggyback must send the whole response: its headers were already sent');
  if (res.writableEnded || res.destroyed) return;
  const named = req.headers[SESSION_HEADER];
  // No body goes out on these: what was queued stays for the next reply that has one.
  const bodiless = req.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304;
  const taken = typeof named === 'string' && named.length <= MAX_SESSION_HEADER && !bodiless ? take(named, contextOf(req)) : undefined;
  if (res.getHeader('content-type') === undefined || taken !== undefined) res.setHeader('Content-Type', 'application/json; charset=utf-8');
  let out = json;
  if (taken !== undefined) {
    out = `{"herald":${taken.json},"body":${json}}`;
    res.setHeader(DELIVERIES_HEADER, String(taken.count));
    // Deliveries are for this one reply: no cache may keep them, or hand them to anyone else.
    res.setHeader('Cache-Control', 'no-store');
  }
  if (typeof named === 'string') {
    const vary = res.getHeader('vary');
    res.setHeader('Vary', vary === undefined ? 'Herald-Session' : `${String(vary)}, Herald-Session`);
  }
  res.setHeader('Content-Length', Buffer.byteLength(out));
  res.end(out);
}

function contextOf(req: IncomingMessage): RequestContext {
  return { connectionType: 'piggyback', browserId: readCookie(req, BROWSER_COOKIE), canSetCookie: false, headers: req.headers };
}
