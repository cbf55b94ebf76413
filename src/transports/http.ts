/**
 * @module
 * HTTP plumbing shared by the HTTP transports: bounded body reading, cookies, Bayeux message
 * extraction from JSON, form and query encodings, and replies that leave at once.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { cookiesVouchedFor } from '../core/protocol.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The client went away (or cut the connection) before its request was read: nobody is left to
 * answer, and it is no fault of the server's (status 499, as nginx logs it; nothing is sent).
 */
export class ClientGone extends HttpError {
  constructor() {
    super(499, 'client closed the request');
  }
}

/**
 * How much of a body over the limit is read and dropped before its 413 is sent. Closing under a
 * client that is still sending resets the connection, and the client then sees EPIPE or
 * ECONNRESET and never the answer; so the rest is read first, up to a bound that keeps a client
 * that never stops from holding the server: past it, the 413 goes out at once and the connection
 * is cut after a short linger (bounded too).
 */
export const BODY_DRAIN = { bytes: 64 * 1024 * 1024, ms: 10_000, lingerBytes: 4 * 1024 * 1024, lingerMs: 2_000 } as const;

/**
 * Reads the whole body, refusing (413) more than `limit` bytes without buffering them, and (415)
 * a compressed one; a client that goes away meanwhile is a ClientGone.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => reject(new HttpError(413, `request body exceeds ${limit} bytes`));
    const declared = Number(req.headers['content-length']);
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      stop();
      void dropRest(req, 0).then(tooLarge);
    };
    const onGone = () => reject(new ClientGone());
    const onClose = () => {
      if (!req.complete) onGone();
    };
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      chunks.length = 0;
    };
    // Read: nothing is left listening, so a request held afterwards (a long-poll) keeps none of this.
    const onEnd = () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      stop();
      req.off('error', onGone);
      req.off('close', onClose);
      resolve(body);
    };
    // `on`, not `once`: each comes at most once, and `once` adds a wrapper per request.
    req.on('error', onGone);
    req.on('close', onClose);
    if (Number.isFinite(declared) && declared > limit) {
      void dropRest(req, declared).then(tooLarge);
      return;
    }
    // A compressed body would be taken for text (a gzip publish stored as mojibake): refused, and read first so the answer is seen.
    const encoding = req.headers['content-encoding']?.trim().toLowerCase();
    if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
      const coding = JSON.stringify(encoding.slice(0, 40));
      void dropRest(req, Number.isFinite(declared) ? declared : 0).then(() => reject(new HttpError(415, `Content-Encoding ${coding} is not supported: send the body uncompressed`)));
      return;
    }
    req.on('data', onData);
    req.on('end', onEnd);
  });
}

/**
 * Reads and drops the rest of a body (`declared` bytes in all, when the request says): resolves
 * when it has ended, or at once when it is past BODY_DRAIN, which then lets the client a moment
 * to read the answer before the connection is cut.
 */
function dropRest(req: IncomingMessage, declared: number): Promise<void> {
  return new Promise((resolve) => {
    if (req.complete) return resolve();
    let dropped = 0;
    let bound: number = BODY_DRAIN.bytes;
    let timer = setTimeout(() => giveUp(), BODY_DRAIN.ms).unref();
    const onData = (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > bound) giveUp();
    };
    const done = () => {
      clearTimeout(timer);
      req.off('data', onData);
      resolve();
    };
    const giveUp = () => {
      if (bound > BODY_DRAIN.bytes) return req.socket.destroy();
      // The answer goes out now; whatever still arrives is dropped until the linger's bounds.
      bound = BODY_DRAIN.bytes + BODY_DRAIN.lingerBytes;
      clearTimeout(timer);
      timer = setTimeout(() => req.socket.destroy(), BODY_DRAIN.lingerMs).unref();
      resolve();
    };
    req.on('data', onData);
    req.once('end', done);
    req.once('close', done);
    req.resume();
    if (declared > BODY_DRAIN.bytes) giveUp();
  });
}

/**
 * The value of the cookie `name` (its first occurrence, trimmed), read in place: every long-poll
 * cycle reads two cookies, and splitting the header each time made garbage by the thousand.
 */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (let at = 0; at < header.length; ) {
    let end = header.indexOf(';', at);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', at);
    // The pair's name is what stands before its first '=', blanks trimmed (an empty one names nothing).
    if (eq > at && eq < end && header.slice(at, eq).trim() === name) return header.slice(eq + 1, end).trim();
    at = end + 1;
  }
  return undefined;
}

/** Where the server puts how to find a request's client address, then the address (see clientAddress). */
const CLIENT_ADDRESS = Symbol('herald.clientAddress');

type AddressEntry = string | undefined | ((req: IncomingMessage) => string | undefined);
type WithAddress = IncomingMessage & { [CLIENT_ADDRESS]?: AddressEntry };

/**
 * Tells how to find who sent the request (behind a trusted proxy, from its forwarding headers):
 * the server sets it at the door, and it runs on first use, inside the handlers, only for the
 * requests that need it.
 */
export function setClientAddress(req: IncomingMessage, resolve: (req: IncomingMessage) => string | undefined): void {
  (req as WithAddress)[CLIENT_ADDRESS] = resolve;
}

/**
 * The client's address, for per-address limits, logs and presence: as the server resolves it
 * (behind a trusted proxy, the client's, not the proxy's), else the peer's.
 */
export function clientAddress(req: IncomingMessage): string | undefined {
  const entry = (req as WithAddress)[CLIENT_ADDRESS];
  if (typeof entry !== 'function') return entry ?? req.socket.remoteAddress;
  const address = entry(req);
  (req as WithAddress)[CLIENT_ADDRESS] = address;
  return address;
}

/** Told of each connection's life (opened, closed, and why), for debug logs. */
export type LifecycleListener = (event: string, fields: Record<string, unknown>) => void;

/** The cookie a browser app may keep its Herald token in. */
export const TOKEN_COOKIE = 'herald_token';

/** The token of an `Authorization: Bearer <token>` header, if the request has one. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return header === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
}

/** Whether the request came over TLS (cookies set on it must then be Secure). */
export function isTls(req: IncomingMessage): boolean {
  return 'encrypted' in req.socket && req.socket.encrypted === true;
}

/** The token a request carries (`undefined`: none), or why the one it carries does not count. */
export type RequestToken = { readonly ok: true; readonly token: string | undefined } | { readonly ok: false; readonly error: string };

/** Why a `herald_token` cookie was not honoured: what the refusal says. */
export const AMBIENT_COOKIE_REFUSED =
  'the herald_token cookie does not count on a request any web site could make (no Origin header, no Sec-Fetch-Site: same-origin): send the token as Authorization: Bearer or ?token=';

/**
 * A token the request carries, wherever it can: `Authorization: Bearer`, `?token=` (EventSource
 * and WebSocket in browsers cannot set headers), or the `herald_token` cookie. The cookie is
 * ambient: the browser attaches it to a `<script src>`, an `<iframe>` or an `<img>` that another
 * site points here, and those read the answer without asking CORS (JSONP, iframe). So it counts
 * only on requests no other site can make: the browser says so (`Sec-Fetch-Site: same-origin`),
 * or the request names its page's origin (an `Origin` the router has already found allowed;
 * `null`, from sandboxed or opaque pages, names none). Otherwise the request is refused rather
 * than served anonymously, as a forged token is: the client meant to act as someone.
 */
export function readToken(req: IncomingMessage, query: URLSearchParams): RequestToken {
  const bearer = bearerToken(req);
  if (bearer !== undefined) return { ok: true, token: bearer };
  const inQuery = query.get('token');
  if (inQuery !== null && inQuery !== '') return { ok: true, token: inQuery };
  const cookie = readCookie(req, TOKEN_COOKIE);
  if (cookie === undefined || cookie === '') return { ok: true, token: undefined };
  return cookiesVouchedFor(req.headers) ? { ok: true, token: cookie } : { ok: false, error: AMBIENT_COOKIE_REFUSED };
}

/**
 * The messages of one request, however they were encoded: a JSON body (an array or a single
 * message), or one or more `message` parameters (form body, `text/plain` body from Faye's
 * cross-origin transport, or query string), each holding a message or an array of them.
 */
export function parseMessages(contentType: string | undefined, body: string | undefined, query: URLSearchParams): unknown[] {
  let values: unknown[];
  if (body !== undefined && isJson(contentType)) {
    values = [parseJson(body)];
  } else {
    const params = body !== undefined ? new URLSearchParams(body) : query;
    const encoded = params.getAll('message');
    if (encoded.length === 0) throw new HttpError(400, 'no messages: send a JSON body or a "message" parameter');
    values = encoded.map(parseJson);
  }
  const messages: unknown[] = [];
  for (const value of values) {
    if (Array.isArray(value)) messages.push(...value);
    else if (typeof value === 'object' && value !== null) messages.push(value);
    else throw new HttpError(400, 'a message must be a JSON object or an array of objects');
  }
  if (messages.length === 0) throw new HttpError(400, 'empty message batch');
  if (!messages.every((m) => typeof m === 'object' && m !== null && !Array.isArray(m))) {
    throw new HttpError(400, 'every message in a batch must be a JSON object');
  }
  return messages;
}

export function isJson(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType.trim());
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `malformed JSON: ${(error as Error).message}`);
  }
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 405: 'Method Not Allowed', 429: 'Too Many Requests', 503: 'Service Unavailable' };

/**
 * Guards a socket taken for an upgrade, and stays its one 'error' listener once it is a WebSocket:
 * an I/O error closes the connection instead of crashing the process. A shared function, not a
 * closure, so that it keeps nothing of the request.
 */
export function destroyOnError(this: Duplex): void {
  this.destroy();
}

/**
 * Refuses a WebSocket upgrade with a plain HTTP error naming the problem, then closes the socket.
 * `headers`: more header lines, each ending in CRLF.
 */
export function refuseUpgrade(socket: Duplex, status: 400 | 401 | 403 | 405 | 429 | 503, message: string, headers = ''): void {
  const body = JSON.stringify({ error: message });
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\n${headers}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  // Nobody reads an upgraded socket again, so a client that keeps it open (or keeps sending a body)
  // would hold it forever: close it once the answer is out.
  socket.once('finish', () => socket.destroy());
}

export const NO_CACHE = 'no-cache, no-store, must-revalidate';

/**
 * Headers of every reply that may have been held: no caching, no MIME sniffing, and no buffering
 * by a reverse proxy (nginx reads `X-Accel-Buffering`), so it reaches the client the moment it is sent.
 */
export const FLOWING_HEADERS = {
  'Cache-Control': NO_CACHE,
  'X-Content-Type-Options': 'nosniff',
  'X-Accel-Buffering': 'no',
} as const;

/** A JSON reply with an explicit length, so it leaves in one write. */
export function sendJson(res: ServerResponse, status: number, body: string, headers: Record<string, string | string[]> = {}): void {
  sendReply(res, status, body, jsonHeaders(body, headers));
}

/** The headers of a JSON reply of `body`, after `headers`, in the order they are written. */
export function jsonHeaders(body: string, headers: Readonly<Record<string, string | string[]>>): Record<string, string | string[] | number> {
  return {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    ...FLOWING_HEADERS,
  };
}

/** `headers` as the lines of a response head, in order (a list: a line per value), for replies written by hand. */
export function headerLines(headers: Readonly<Record<string, string | string[] | number>>): string {
  let lines = '';
  for (const name in headers) {
    const value = headers[name]!;
    if (!Array.isArray(value)) lines += `${name}: ${value}\r\n`;
    else for (const item of value) lines += `${name}: ${item}\r\n`;
  }
  return lines;
}

const FLOWING_LINES = headerLines(FLOWING_HEADERS);

/** The head lines of jsonHeaders(body, headers), written out without making that object (`headers` names none of its own). */
export function jsonHeadLines(body: string, headers: Readonly<Record<string, string | string[]>>): string {
  return `${headerLines(headers)}Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${FLOWING_LINES}`;
}

/** `body` with exactly `headers` (which give its length), unless the response is already over. */
export function sendReply(res: ServerResponse, status: number, body: string, headers: Record<string, string | string[] | number>): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(status, headers);
  res.end(body);
}

export function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string | string[]> = {}): void {
  sendJson(res, status, JSON.stringify({ error: message }), headers);
}

/** A refused credential (401 says how to authenticate) or permission (403). */
export function sendRefusal(res: ServerResponse, refusal: { readonly status: 401 | 403 | 503; readonly error: string }, headers: Record<string, string | string[]> = {}): void {
  const extra: Record<string, string> = refusal.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : refusal.status === 503 ? { 'Retry-After': '1' } : {};
  sendError(res, refusal.status, refusal.error, { ...headers, ...extra });
}
