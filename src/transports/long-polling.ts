/**
 * @module
 * The `long-polling` transport (Bayeux §"long-polling"): each HTTP request carries a batch of
 * messages and its response carries the replies; a connect may be held open until there is
 * something to deliver. Accepts POST with a JSON body, POST with `message=` (form-encoded, or
 * `text/plain` from Faye's cross-origin transport), and GET with `?message=`; a GET that names a
 * `jsonp` callback is the `callback-polling` transport (see callback-polling.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BatchHandler, HeldReply, RequestContext, Responder } from '../core/protocol.js';
import { JSONP_PARAM, jsonpCallback, jsonpReply } from './callback-polling.js';
import type { CallbackName } from './callback-polling.js';
import { HeldConnections } from './held-connection.js';
import type { HeldConnection, HeldConnectionOwner } from './held-connection.js';
import { clientAddress, headerLines, HttpError, isJson, isTls, jsonHeadLines, jsonHeaders, parseMessages, readBody, readCookie, readToken, sendError, sendReply } from './http.js';

export const BROWSER_COOKIE = 'BAYEUX_BROWSER';
export const CALLBACK_POLLING = 'callback-polling';

export interface LongPollingOptions {
  /** Largest request body accepted (413 above). */
  readonly maxBodyBytes: number;
  /** Attributes of the `BAYEUX_BROWSER` cookie after its value (e.g. `Path=/; HttpOnly; SameSite=Lax`). */
  readonly cookieAttributes: string;
  /** Serve GETs carrying a `jsonp` parameter as callback-polling. */
  readonly callbackPolling: boolean;
  /** Told when a body is refused for its size (a metric). */
  readonly onTooLarge?: () => void;
}

export class LongPollingTransport {
  static readonly connectionType = 'long-polling';
  /** Connections taken from Node while their poll is held, or idle after it (see held-connection.ts). */
  readonly held = new HeldConnections();

  constructor(
    private readonly handleBatch: BatchHandler,
    private readonly options: LongPollingOptions,
  ) {}

  /**
   * Serves one request; `headers` (CORS) go on every response. A GET with a `jsonp` parameter is
   * callback-polling: the same exchange, its replies wrapped for a `<script>` tag.
   */
  async serve(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, headers: Record<string, string | string[]>): Promise<void> {
    let messages: unknown[];
    let callback: CallbackName | undefined;
    try {
      if (req.method === 'POST') {
        const body = await readBody(req, this.options.maxBodyBytes);
        messages = parseMessages(req.headers['content-type'], body.toString('utf8'), query);
      } else if (req.method === 'GET') {
        if (query.has(JSONP_PARAM)) {
          if (!this.options.callbackPolling) throw new HttpError(400, 'callback-polling (JSONP) is not enabled on this server');
          callback = jsonpCallback(query);
        }
        messages = parseMessages(undefined, undefined, query);
      } else {
        throw new HttpError(405, `method ${req.method} not allowed: use POST or GET`);
      }
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      const extra: Record<string, string> = {};
      // An unread body would be taken for the next request on a kept-alive connection.
      if (error.status === 413) {
        extra.Connection = 'close';
        this.options.onTooLarge?.();
      }
      if (error.status === 405) extra.Allow = 'GET, POST, OPTIONS';
      sendError(res, error.status, error.message, { ...headers, ...extra });
      return;
    }

    const token = readToken(req, query);
    const context: RequestContext = {
      connectionType: callback === undefined ? LongPollingTransport.connectionType : CALLBACK_POLLING,
      browserId: readCookie(req, BROWSER_COOKIE),
      simpleRequest: req.method !== 'POST' || !isJson(req.headers['content-type']),
      canSetCookie: true,
      remoteAddress: clientAddress(req),
      headers: req.headers,
      token: token.ok ? token.token : undefined,
      tokenRefused: token.ok ? undefined : token.error,
    };
    const outcome = await this.handleBatch(messages, context);
    // The router's headers are this request's own: a copy only where a cookie joins them.
    let replyHeaders = headers;
    if (outcome.newBrowserId !== undefined) {
      // Over TLS the cookie must never travel in clear afterwards.
      const secure = isTls(req) && !/;\s*Secure\b/i.test(`; ${this.options.cookieAttributes}`) ? '; Secure' : '';
      replyHeaders = { ...headers, 'Set-Cookie': `${BROWSER_COOKIE}=${outcome.newBrowserId}; ${this.options.cookieAttributes}${secure}` };
    }
    const poll = new HeldPoll(res, callback, replyHeaders);
    const pending = outcome.pending;
    if (pending === undefined) {
      poll.respond(outcome.body);
      return;
    }
    // The client went away while the batch was handled.
    if (res.destroyed) return;
    poll.hold = pending.wait(poll);
    // Answered at once (its session closed meanwhile): nothing is held.
    if (res.writableEnded) return;
    // Held without Node's request, response and parser where the connection can be taken.
    const connection = this.held.take(req, res, poll, replyHeaders);
    if (connection !== undefined) {
      poll.takeConnection(connection);
      return;
    }
    (res as ServerResponse & { [HELD]?: HeldPoll })[HELD] = poll;
    res.on('close', pollClosed);
  }
}

const HELD = Symbol('herald.heldPoll');

/** The reply to one poll, held or not: what it needs to answer, and nothing of the request. */
class HeldPoll implements Responder, HeldConnectionOwner {
  hold: HeldReply | undefined;
  /** The connection, once taken from Node for the hold; the response is then gone. */
  connection: HeldConnection | undefined;

  constructor(
    private res: ServerResponse | undefined,
    private readonly callback: CallbackName | undefined,
    private readonly headers: Record<string, string | string[]>,
  ) {}

  /** Answers on `connection` from now on, and lets the response (with its request) go. */
  takeConnection(connection: HeldConnection): void {
    this.connection = connection;
    this.res = undefined;
  }

  respond(body: string): void {
    const connection = this.connection;
    if (connection !== undefined && this.callback === undefined) connection.reply(200, 'OK', jsonHeadLines(body, this.headers), body);
    else {
      const reply = this.callback === undefined ? { body, headers: jsonHeaders(body, this.headers) } : jsonpReply(this.callback, body, this.headers);
      if (connection !== undefined) connection.reply(200, 'OK', headerLines(reply.headers), reply.body);
      else if (this.res !== undefined) sendReply(this.res, 200, reply.body, reply.headers);
    }
    this.res = undefined;
  }

  gone(): void {
    this.hold?.cancel();
  }

  answerNow(): void {
    this.hold?.answerNow();
  }
}

/** A held poll's response closed (a shared listener, `this` the response): if unanswered, the client went away — drop the hold so the session can expire or be resumed. */
function pollClosed(this: ServerResponse & { [HELD]?: HeldPoll }): void {
  if (!this.writableEnded) this[HELD]?.hold?.cancel();
}
