/**
 * @module
 * Taking a long-lived HTTP stream's connection away from Node's HTTP machinery once its response
 * head is out. An open event stream otherwise keeps, for hours, its request (headers, raw headers),
 * its response, an HTTP parser (with its native half), and the server's per-connection state and
 * listener closures: most of what an idle stream costs. Node's own upgrade path lets go of a
 * connection the same way (_http_server.js, onParserExecuteCommon); this replicates it for a
 * response already started, on Node 20's internals, recognised by name. Where anything is not as
 * expected (another Node, a pipelined request behind this one, a response not on its socket yet)
 * the connection is not taken and the stream goes on through the response as before.
 *
 * A taken connection: nothing it sends is read (a stream takes no requests after it), its end or an
 * error destroys it, and the stream writes its own chunk framing and ends the connection itself.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

type FreeParser = (parser: unknown, req: IncomingMessage | null, socket: Socket | null) => void;

/** Node's own parser release (pool, connection list, native reads); absent elsewhere than Node. */
const freeParser: FreeParser | undefined = (() => {
  try {
    const common = createRequire(import.meta.url)('_http_common') as { freeParser?: unknown };
    return typeof common.freeParser === 'function' ? (common.freeParser as FreeParser) : undefined;
  } catch {
    return undefined;
  }
})();

/** The listeners Node's HTTP server puts on each connection (connectionListenerInternal), by event and name. */
const NODE_LISTENERS: readonly (readonly [string, string])[] = [
  ['data', 'bound socketOnData'],
  ['end', 'bound socketOnEnd'],
  ['close', 'bound socketOnClose'],
  ['drain', 'bound socketOnDrain'],
  ['error', 'socketOnError'],
  ['timeout', 'socketOnTimeout'],
  ['resume', 'onSocketResume'],
  ['pause', 'onSocketPause'],
];

type Listener = (...args: unknown[]) => void;

/**
 * The listener for `event` named `name`, read where EventEmitter keeps them (one function, or an
 * array of them): `listeners()` would copy the array, for every event, twice a poll.
 */
export function listenerNamed(socket: Socket, event: string, name: string): Listener | undefined {
  const entry = (socket as unknown as { _events?: Record<string, Listener | Listener[] | undefined> })._events?.[event];
  if (typeof entry === 'function') return entry.name === name ? entry : undefined;
  return entry?.find((candidate) => candidate.name === name);
}

/** Per-connection overrides Node installs so that a 'data' listener unconsumes the parser. */
const NODE_OVERRIDES = ['on', 'addListener', 'prependListener', 'setEncoding'] as const;

interface HttpInternals {
  parser?: { incoming?: unknown } | null;
  _httpMessage?: unknown;
}

export interface TakenConnection {
  readonly socket: Socket;
  /** The head announced chunked encoding: every write must be a chunk, and the end the last chunk. */
  readonly chunked: boolean;
}

/**
 * Takes `res`'s connection after its head was flushed, or undefined (nothing changed) when it
 * cannot. `res` then emits 'close' once, as a finished response does, so whatever counts
 * responses in flight forgets it; the connection's own 'close' tells when the stream is gone.
 */
export function takeConnection(req: IncomingMessage, res: ServerResponse): TakenConnection | undefined {
  if (!res.headersSent || res.writableEnded) return undefined;
  const chunked = res.chunkedEncoding;
  const socket = releaseFromNode(req, res);
  if (socket === undefined) return undefined;
  socket.on('data', discard);
  socket.on('end', destroy);
  socket.on('error', destroy);
  socket.resume();
  return { socket, chunked };
}

/**
 * Takes `res`'s connection from Node's HTTP server (its listeners, parser and overrides gone, the
 * response detached and told 'close'), or undefined (nothing changed) when it cannot be done
 * without losing anything: the caller then listens on the socket itself. `req` must be the last
 * request read on it and `res` the response on it, with nothing held back.
 */
export function releaseFromNode(req: IncomingMessage, res: ServerResponse): Socket | undefined {
  const socket = res.socket as (Socket & HttpInternals) | null;
  if (freeParser === undefined || socket === null || socket.destroyed) return undefined;
  const parser = socket.parser;
  // Another request read after this one (pipelined) is owed an answer the normal way.
  if (parser == null || parser.incoming !== req || socket._httpMessage !== res) return undefined;
  // Bytes the response holds back (not on the socket yet) would be lost.
  if ((res as unknown as { outputData?: unknown[] }).outputData?.length) return undefined;
  const found: [string, Listener][] = [];
  for (const [event, name] of NODE_LISTENERS) {
    const listener = listenerNamed(socket, event, name);
    if (listener === undefined) return undefined;
    found.push([event, listener]);
  }
  for (const [event, listener] of found) socket.removeListener(event, listener);
  res.detachSocket(socket);
  freeParser(parser, req, socket);
  releaseOverrides(socket);
  dropSpentTimer(socket);
  res.emit('close');
  return socket;
}

/** Where a socket keeps its idle timer (net.js `kTimeout`), found on first use. */
let timerKey: symbol | undefined;

/**
 * Lets go of a socket's idle timer once no timeout is set. Node clears the keep-alive timer when
 * the next request on a connection starts, but keeps the cleared Timeout (and its bound callback)
 * on the socket: some 200 B for as long as the connection lives. Null is what a new socket has.
 */
export function dropSpentTimer(socket: Socket): void {
  if (socket.timeout) return;
  timerKey ??= Object.getOwnPropertySymbols(socket).find((key) => key.description === 'timeout');
  const own = socket as unknown as Record<symbol, unknown>;
  if (timerKey !== undefined && own[timerKey] != null) own[timerKey] = null;
}

/**
 * Points Node's per-connection overrides back at the socket's own methods, as Node does itself once
 * a connection has no parser (socketListenerWrap): their closures go. Assigned, not deleted: a
 * delete turns the socket's properties into a dictionary, some 1.6 KB per connection.
 */
export function releaseOverrides(socket: Socket): void {
  const own = socket as unknown as Record<string, unknown>;
  const proto = Object.getPrototypeOf(socket) as Record<string, unknown>;
  for (const name of NODE_OVERRIDES) if (Object.hasOwn(own, name)) own[name] = proto[name];
}

/** A stream takes no requests: what its client sends is dropped (but read, so that its end is seen). */
function discard(): void {}

function destroy(this: Socket): void {
  this.destroy();
}

const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/** Ends a taken connection: the last chunk where chunked, then the connection itself once its bytes are out. */
export function endTaken(taken: TakenConnection): void {
  const socket = taken.socket;
  if (socket.destroyed || !socket.writable) return;
  if (taken.chunked) socket.write(LAST_CHUNK);
  socket.destroySoon();
}

/** `bytes` as one HTTP/1.1 chunk (size line, bytes, CRLF); nothing for none, which would end the response. */
export function asChunk(bytes: Buffer): Buffer {
  return bytes.length === 0 ? bytes : Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`, 'latin1'), bytes, CRLF]);
}

const CRLF = Buffer.from('\r\n', 'latin1');
