/**
 * @module
 * A held long-poll without Node's HTTP objects. While a connect waits (up to its timeout, by the
 * thousand), Node would keep its request and headers, its response, an HTTP parser (with its
 * native half) and a dozen listener closures per connection: most of what a held poll costs. So
 * the connection is taken from Node for the hold (as an event stream's is, taken-connection.ts),
 * only the socket is kept, and the reply is written by hand: the bytes Node would write (status
 * line, the same headers, Date, Connection/Keep-Alive, the body, in one write).
 *
 * Afterwards the connection goes back to Node's HTTP server, as a new connection does, when the
 * next request's first bytes arrive; until then it idles here under the server's keep-alive
 * timeout, as it would in Node. A client that sends another request behind the held one
 * (pipelining) gets the held one answered at once, and its bytes are handed to the server's parser
 * with the connection. Where anything is not as expected (another Node, TLS, a server timeout or
 * request limit per connection, bytes of another request already read) nothing is taken and the
 * poll is held the ordinary way.
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { systemClock } from '../core/clock.js';
import { Deadlines } from '../core/deadlines.js';
import type { Deadline, DeadlineTarget } from '../core/deadlines.js';
import { dropSpentTimer, listenerNamed, releaseFromNode } from './taken-connection.js';

type ConnectionListener = (this: Server, socket: Socket) => void;

/** What Node's HTTP server does with each new connection (parser, listeners, timeouts); absent elsewhere than Node. */
const connectionListener: ConnectionListener | undefined = (() => {
  try {
    const server = createRequire(import.meta.url)('_http_server') as { _connectionListener?: unknown };
    return typeof server._connectionListener === 'function' ? (server._connectionListener as ConnectionListener) : undefined;
  } catch {
    return undefined;
  }
})();

/** Node's margin over the advertised keep-alive timeout before it closes an idle connection (_http_server.js). */
const KEEP_ALIVE_MARGIN_MS = 1000;

/**
 * Bytes a client may send behind a held poll before its answer is out: its next request, which
 * waits for that answer. Past this the connection is cut (Node would stop reading instead).
 */
export const PIPELINED_LIMIT = 64 * 1024;

/** What a held connection tells the poll it carries. */
export interface HeldConnectionOwner {
  /** The connection closed (or broke) before the reply: the client went away. */
  gone(): void;
  /** The client sent another request behind the held one: answer now, so that one can be served. */
  answerNow(): void;
}

/** The parts of Node's internals read here, recognised by name (Node 20). */
interface NodeSocket extends Socket {
  server?: Server;
  parser?: { duration?: () => number } | null;
  _handle?: { _consumed?: boolean } | null;
  [OWNER]?: HeldConnection | undefined;
}

const OWNER = Symbol('herald.heldConnection');

const HELD = 0;
const IDLE = 1;
const DONE = 2;

/** The long-poll connections taken from Node: held, or idle between requests. */
export class HeldConnections {
  readonly #all = new Set<HeldConnection>();
  /**
   * Keep-alive timeouts of the connections idle after their reply: one queue and timer for all,
   * where a socket timeout each would make a timer and a bound callback every poll cycle.
   */
  readonly idleDeadlines = new Deadlines(systemClock);
  /** Set once the server closes: answered connections close rather than wait for another request. */
  closing = false;

  /** Connections held or idle here (draining waits for the held ones). */
  get size(): number {
    return this.#all.size;
  }

  /**
   * Takes `res`'s connection for a poll that is about to wait, or undefined (nothing changed) when
   * it cannot be done safely; `headers` are the reply's extra headers (CORS, cookie), checked now.
   */
  take(req: IncomingMessage, res: ServerResponse, owner: HeldConnectionOwner, headers: Readonly<Record<string, string | string[]>>): HeldConnection | undefined {
    const socket = res.socket as NodeSocket | null;
    const server = socket?.server;
    if (connectionListener === undefined || socket == null || server == null || res.headersSent || res.writableEnded || !req.complete) return undefined;
    // Node's per-connection timeout and request count live in state a taken connection leaves behind.
    if ((socket as { encrypted?: boolean }).encrypted === true || server.timeout > 0 || (server.maxRequestsPerSocket ?? 0) > 0 || (res as { maxRequestsOnConnectionReached?: boolean }).maxRequestsOnConnectionReached === true) return undefined;
    // Part of a further request already read (the parser is in a message): it would be lost with the parser.
    if (typeof socket.parser?.duration !== 'function' || socket.parser.duration() !== 0) return undefined;
    if (!validHeaders(headers)) return undefined;
    const keepAlive = res.shouldKeepAlive;
    if (releaseFromNode(req, res) === undefined) return undefined;
    const held = new HeldConnection(this, socket as NodeSocket & { server: Server }, owner, keepAlive);
    this.#all.add(held);
    return held;
  }

  /**
   * Server closing: idle connections close, as Node closes its idle ones, and held ones once
   * answered (also where Herald serves another's server, which may go on listening).
   */
  closeIdle(): void {
    this.closing = true;
    for (const held of this.#all) held.closeIfIdle();
  }

  destroyAll(): void {
    for (const held of this.#all) held.destroy();
    this.idleDeadlines.dispose();
  }

  /** @internal */
  forget(held: HeldConnection): void {
    this.#all.delete(held);
  }
}

export class HeldConnection implements DeadlineTarget {
  #state = HELD;
  #owner: HeldConnectionOwner | undefined;
  /** Bytes of the client's next request, sent while this one was held. */
  #pipelined: Buffer[] | undefined;
  /** While idle after the reply: when the keep-alive timeout closes the connection. */
  #idleUntil: Deadline | undefined;

  constructor(
    private readonly registry: HeldConnections,
    private readonly socket: NodeSocket & { server: Server },
    owner: HeldConnectionOwner,
    private readonly keepAlive: boolean,
  ) {
    this.#owner = owner;
    socket[OWNER] = this;
    socket.on('data', heldData);
    socket.on('end', destroySocket);
    socket.on('error', destroySocket);
    socket.on('close', heldClosed);
    socket.resume();
  }

  /**
   * Writes the reply Node would write for `writeHead(status, headers)` and `end(body)`, given the
   * headers as their head lines (http.ts headerLines), then keeps the connection for the next
   * request (or closes it: no keep-alive, or the server is closing).
   */
  reply(status: number, statusText: string, headLines: string, body: string): void {
    if (this.#state !== HELD) return;
    this.#owner = undefined;
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    const keepAlive = this.keepAlive && this.socket.server.listening && !this.registry.closing;
    let head = `HTTP/1.1 ${status} ${statusText}\r\n${headLines}`;
    head += `Date: ${httpDate()}\r\n`;
    const timeout = this.socket.server.keepAliveTimeout;
    head += keepAlive ? (timeout ? `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(timeout / 1000)}\r\n` : 'Connection: keep-alive\r\n') : 'Connection: close\r\n';
    // One string, as Node sends a head with a string body: both as UTF-8.
    socket.write(`${head}\r\n${body}`);
    if (!keepAlive) {
      this.#state = DONE;
      socket.destroySoon();
      return;
    }
    if (this.#pipelined !== undefined) {
      this.#returnToNode(this.#pipelined);
      return;
    }
    this.#state = IDLE;
    if (timeout) this.#idleUntil = this.registry.idleDeadlines.add(this, timeout + KEEP_ALIVE_MARGIN_MS);
  }

  /** @internal The keep-alive timeout passed with no further request: close, as Node would. */
  deadlinePassed(): void {
    this.#idleUntil = undefined;
    if (this.#state === IDLE) this.socket.destroy();
  }

  /** @internal The client sent bytes. */
  received(chunk: Buffer): void {
    if (this.#state === IDLE) {
      this.#returnToNode([chunk]);
      return;
    }
    if (this.#state !== HELD) return;
    const first = this.#pipelined === undefined;
    const pipelined = (this.#pipelined ??= []);
    pipelined.push(chunk);
    if (pipelined.reduce((bytes, piece) => bytes + piece.length, 0) > PIPELINED_LIMIT) {
      this.socket.destroy();
      return;
    }
    if (first) this.#owner?.answerNow();
  }

  /** @internal The connection closed. */
  closed(): void {
    const owner = this.#state === HELD ? this.#owner : undefined;
    this.#state = DONE;
    this.#owner = undefined;
    this.#pipelined = undefined;
    this.#forgetDeadline();
    this.socket[OWNER] = undefined;
    this.registry.forget(this);
    owner?.gone();
  }

  closeIfIdle(): void {
    if (this.#state === IDLE) this.socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }

  #forgetDeadline(): void {
    if (this.#idleUntil === undefined) return;
    this.registry.idleDeadlines.cancel(this.#idleUntil);
    this.#idleUntil = undefined;
  }

  /** Gives the connection back to Node's HTTP server as if new, with the bytes already read from it. */
  #returnToNode(chunks: Buffer[]): void {
    const socket = this.socket;
    this.#state = DONE;
    this.#pipelined = undefined;
    this.#forgetDeadline();
    this.registry.forget(this);
    dropSpentTimer(socket);
    socket.removeListener('data', heldData);
    socket.removeListener('end', destroySocket);
    socket.removeListener('error', destroySocket);
    socket.removeListener('close', heldClosed);
    socket[OWNER] = undefined;
    // Node's parser then reads the socket natively again, as it reads a new connection.
    if (socket._handle != null && socket.readableLength === 0) socket._handle._consumed = false;
    connectionListener!.call(socket.server, socket);
    const onData = listenerNamed(socket, 'data', 'bound socketOnData');
    if (onData === undefined) {
      socket.destroy();
      return;
    }
    onData(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  }
}

function heldData(this: NodeSocket, chunk: Buffer): void {
  this[OWNER]?.received(chunk);
}

function heldClosed(this: NodeSocket): void {
  this[OWNER]?.closed();
}

function destroySocket(this: Socket): void {
  this.destroy();
}

function validHeaders(headers: Readonly<Record<string, string | string[]>>): boolean {
  try {
    for (const name in headers) {
      validateHeaderName(name);
      const value = headers[name]!;
      if (typeof value === 'string') validateHeaderValue(name, value);
      else for (const item of value) validateHeaderValue(name, item);
      // Node adds these itself unless given: a reply that names them is left to Node.
      if (/^(?:date|connection|keep-alive|transfer-encoding|trailer)$/i.test(name)) return false;
    }
    return true;
  } catch {
    return false;
  }
}

let dateSecond = -1;
let dateText = '';

/** The Date header's value, as Node writes it (made once a second). */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
