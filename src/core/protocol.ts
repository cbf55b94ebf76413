/**
 * @module
 * The contract between a protocol (Bayeux) and the transports that carry it. A transport parses
 * its wire into messages, hands them to a BatchHandler, and writes back what it gets: a body now,
 * or a hold that produces a body later. Transports know nothing of the protocol's rules.
 */
import type { Session, Stream } from './session.js';

export interface RequestContext {
  /** The connection type that carried the request: 'long-polling', 'websocket', … */
  readonly connectionType: string;
  /** The `BAYEUX_BROWSER` cookie sent with the request, if any. */
  readonly browserId?: string | undefined;
  /**
   * The request is one any web page can make without the browser asking first (a GET, or a form or
   * text/plain POST), and it may carry no Origin header: nothing proves who sent it.
   */
  readonly simpleRequest?: boolean;
  /** Whether this transport can set a cookie on the reply (false on a WebSocket). */
  readonly canSetCookie: boolean;
  readonly remoteAddress?: string | undefined;
  /** A token carried by the HTTP request itself (`Authorization: Bearer`, `?token=`, cookie). */
  readonly token?: string | undefined;
  /**
   * Why the request's own token does not count, when it does not (a cookie on a request any site
   * could make): a message acting on it alone is refused with this.
   */
  readonly tokenRefused?: string | undefined;
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
  /** The push connection (a WebSocket) the request arrived on, if any: a session bound to it is this sender's own. */
  readonly stream?: Stream | undefined;
}

/** Takes a held reply's body, once (an object: a held request keeps no closure). */
export interface Responder {
  /** `hold`: what wait() returned for it, for a responder that holds several (a WebSocket may). */
  respond(body: string, hold: HeldReply): void;
}

/** A reply being held: cancel() drops it without responding (the client went away). */
export interface HeldReply {
  cancel(): void;
  /**
   * Ends the hold now, answering with whatever is there as at its timeout (the connection has
   * another request waiting behind it); nothing if it was already resumed or cancelled.
   */
  answerNow(): void;
}

/** A reply the protocol wants to hold (a long-poll waiting for messages). */
export interface PendingReply {
  /**
   * Starts waiting; `responder` is given the body once, when the hold ends, unless the returned
   * hold is cancelled first (the client went away). Undefined when nothing is held: the reply was
   * given at once (the session closed meanwhile), or is on its way.
   */
  wait(responder: Responder): HeldReply | undefined;
}

export interface BatchOutcome {
  /** The reply body to send now, unless `pending` is set. */
  readonly body: string;
  readonly pending?: PendingReply | undefined;
  /** The session a handshake created or a connect named: a push transport attaches its stream to it. */
  readonly session?: Session | undefined;
  /** A new browser id the transport should set as the `BAYEUX_BROWSER` cookie. */
  readonly newBrowserId?: string | undefined;
}

/** The outcome in the same turn when nothing had to wait (an asynchronous extension, an engine call), else a promise of it. */
export type BatchHandler = (messages: readonly unknown[], context: RequestContext) => BatchOutcome | Promise<BatchOutcome>;

/** Finds the session a push connection names (e.g. `GET /bayeux/<clientId>` for EventSource), if the request may use it. */
export type SessionFinder = (clientId: string, context: RequestContext) => Session | undefined;

/**
 * Whether the request's cookies may speak for its sender: the browser says the request is
 * same-origin (`Sec-Fetch-Site`), or it names its page's origin (an `Origin` the router has
 * already found allowed; `null`, from sandboxed or opaque pages, names none). A cookie on any
 * other request is ambient: another site could have made the browser send it.
 */
export function cookiesVouchedFor(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  if (headers['sec-fetch-site'] === 'same-origin') return true;
  const origin = headers.origin;
  return typeof origin === 'string' && origin !== '' && origin !== 'null';
}
