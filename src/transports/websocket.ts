/**
 * @module
 * The `websocket` transport: each text frame carries a JSON array of Bayeux messages (or one
 * message); replies go back as frames. A connect is held like a long-poll, but deliveries do not
 * wait for it: they are pushed as frames the moment they are flushed. The socket binds to the
 * session its handshake created or its connect named, so a client may switch to WebSocket
 * mid-session, and a new socket may carry an old clientId.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { RawData, WebSocket } from 'ws';
import { CLOSE_REASONS, closeTextOf } from '../core/close-reasons.js';
import type { CloseReason } from '../core/close-reasons.js';
import { encodeBatch, encodeJoined } from '../core/message.js';
import type { BatchFormat, Delivery, Message, WireFormat } from '../core/message.js';
import type { BatchHandler, BatchOutcome, HeldReply, RequestContext, Responder } from '../core/protocol.js';
import type { Session, Stream } from '../core/session.js';
import { clientAddress, destroyOnError, readCookie, readToken } from './http.js';
import { bufferedBytes, writeToSocket } from './socket-write.js';
import { bayeuxFrames, textFrame } from './ws-frames.js';
import type { LifecycleListener } from './http.js';
import { BROWSER_COOKIE } from './long-polling.js';

export interface WebSocketOptions {
  /** Largest frame accepted; larger ones close the socket with 1009. */
  readonly maxPayloadBytes: number;
  /** A socket whose unsent bytes exceed this is closed as a slow consumer instead of growing memory. */
  readonly maxBufferedBytes: number;
  /** Ping period; a peer that has not answered the previous ping by the next one is dropped. */
  readonly pingIntervalMs: number;
  /** Told when a frame is refused for its size (a metric). */
  readonly onTooLarge?: () => void;
  readonly lifecycle?: LifecycleListener;
  /** Encode one delivery as the JSON of one message: plain, or with its id for sessions that resume. */
  readonly messageFormats: { readonly plain: WireFormat; readonly withIds: WireFormat };
  /**
   * What of its upgrade's headers a Bayeux socket keeps for the messages it will carry (asked once,
   * at the upgrade): an idle socket should hold none that nothing reads. Default: none.
   */
  readonly keptHeaders?: (headers: IncomingHttpHeaders) => RequestHeaders | undefined;
}

type RequestHeaders = NonNullable<RequestContext['headers']>;

/** RFC 6455 close codes Herald uses. */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  invalidPayload: 1007,
  policyViolation: 1008,
  tryAgainLater: 1013,
} as const;

export class WebSocketTransport {
  static readonly connectionType = 'websocket';

  readonly #server: WebSocketServer;
  readonly #peers = new Set<WsPeer>();
  /** What every peer shares: one object, not a field or closure per socket. */
  readonly #shared: PeerShared;
  readonly #pinger: NodeJS.Timeout;

  constructor(
    handleBatch: BatchHandler,
    private readonly options: WebSocketOptions,
  ) {
    const framesOf = (format: WireFormat): BatchFormat => ({
      single: { encode: (message: Message, json?: string) => textFrame(`[${format.encode(message, json)}]`) },
      part: { encode: (message: Message, json?: string) => Buffer.from(format.encode(message, json)) },
      join: bayeuxFrames,
    });
    const { plain, withIds } = options.messageFormats;
    this.#shared = {
      open: this.#peers,
      maxBufferedBytes: options.maxBufferedBytes,
      onTooLarge: options.onTooLarge,
      handleBatch,
      frames: { plain: framesOf(plain), withIds: framesOf(withIds) },
    };
    this.#server = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes, perMessageDeflate: false, clientTracking: false });
    this.#pinger = setInterval(() => {
      for (const peer of this.#peers) peer.ping();
    }, options.pingIntervalMs);
    this.#pinger.unref();
  }

  get openSockets(): number {
    return this.#peers.size;
  }

  /** Completes a Bayeux upgrade the caller has already checked (path, origin). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const token = readToken(req, new URLSearchParams(req.url?.split('?')[1] ?? ''));
    const browserId = readCookie(req, BROWSER_COOKIE);
    const headers = this.options.keptHeaders?.(req.headers);
    // Nearly always nothing: then no object at all.
    const said = browserId === undefined && token.ok && token.token === undefined && headers === undefined ? undefined : { browserId, token: token.ok ? token.token : undefined, tokenRefused: token.ok ? undefined : token.error, headers };
    const remoteAddress = clientAddress(req);
    this.accept(req, socket, head, (ws, raw, shared) => new BayeuxSocket(ws, raw, shared, remoteAddress, said));
  }

  /**
   * Completes any checked upgrade into a kept-alive, bounded peer that `open` makes (the REST API
   * uses it too). Nothing the open socket keeps refers to `req`: an idle socket holds no request or headers.
   */
  accept(req: IncomingMessage, socket: Duplex, head: Buffer, open: (ws: WebSocket, raw: Duplex, shared: PeerShared) => WsPeer): void {
    const lifecycle = this.options.lifecycle;
    const fields = lifecycle === undefined ? undefined : { address: clientAddress(req), path: req.url?.split('?')[0] };
    this.#server.handleUpgrade(req, socket, head, (ws) => this.#opened(open(ws, socket, this.#shared), socket, fields));
  }

  #opened(peer: WsPeer, socket: Duplex, fields: Record<string, unknown> | undefined): void {
    const ws = peer.ws;
    // ws listens for the socket's errors now.
    socket.off('error', destroyOnError);
    const lifecycle = this.options.lifecycle;
    if (lifecycle === undefined) forgetPeerAddress(socket);
    if (lifecycle !== undefined && fields !== undefined) {
      lifecycle('websocket opened', fields);
      ws.once('close', (code, reason) => lifecycle('websocket closed', { ...fields, code, reason: reason.toString() }));
    }
  }

  /** Closes every socket, saying why (the server draining: clients reconnect elsewhere). */
  closeAll(reason: CloseReason): void {
    clearInterval(this.#pinger);
    const { closeCode, closeText } = CLOSE_REASONS[reason];
    for (const peer of this.#peers) peer.close(closeCode, closeText);
  }

  /** Cuts whatever did not finish closing (a peer that stopped reading never will). */
  terminateAll(): void {
    for (const peer of this.#peers) peer.terminate();
  }
}

/** What a peer tells of its socket: an object (the stream on it), not a closure per socket. */
export interface PeerOwner {
  /** The socket closed; told once. */
  peerClosed(): void;
  /** A frame arrived (only with the 'message' listener listenForMessages adds). */
  received?(data: RawData, isBinary: boolean): void;
}

/**
 * One WebSocket: keep-alive, bounded send buffer, and shared pre-built frames; what speaks a
 * protocol on it extends it (one object per socket). Its listeners are functions shared by every
 * peer (`this` is the socket, which points back to its peer, and the peer to its owner): an idle
 * socket holds no closures.
 */
export class WsPeer {
  /** What the socket had read at the last ping (its low 32 bits): nothing more by the next one, and the peer is gone. */
  #readAtPing: number | undefined;
  owner: PeerOwner | undefined;

  constructor(
    readonly ws: WebSocket,
    /** The upgraded TCP socket under `ws`, for writing shared, pre-built frames. */
    private readonly raw: Duplex,
    readonly shared: PeerShared,
  ) {
    (ws as PeerSocket)[PEER] = this;
    shared.open.add(this);
    // No 'pong' listener: a fourth listener would double what ws's listener table costs per socket.
    ws.on('close', left);
    // Without a listener an I/O error would crash the process; ws closes the socket after it.
    ws.on('error', failed);
  }

  get isOpen(): boolean {
    return this.ws.readyState === OPEN;
  }

  /** Hands each frame the client sends to the owner's `received`. */
  listenForMessages(): void {
    this.ws.on('message', receivedByOwner);
  }

  /**
   * A peer that sent nothing since the previous ping, not even the pong it owed, is dropped: told
   * by the bytes its socket read, where a 'pong' listener would cost every socket.
   */
  ping(): void {
    const read = bytesReadBy(this.raw);
    if (read !== undefined && read === this.#readAtPing) {
      this.ws.terminate();
      return;
    }
    this.#readAtPing = read;
    this.ws.ping();
  }

  /**
   * Writes a complete frame built once for every recipient; false when the socket is closing or
   * closed (nothing written). Writing it beside ws is safe: without compression ws writes each of
   * its frames whole and at once, so frames never interleave; and ws counts these bytes in
   * bufferedAmount, as they sit in the same socket.
   */
  sendFrame(frame: Buffer): boolean {
    if (this.ws.readyState !== OPEN) return false;
    const raw = this.raw;
    writeToSocket(raw, frame);
    // The socket's own count, which is all of bufferedAmount without compression (plus what
    // direct writes left with libuv): checked once per delivery, rather than through ws and its sender.
    if (bufferedBytes(raw) > this.shared.maxBufferedBytes) this.#slowConsumer();
    return true;
  }

  /** Each delivery's shared frame, all in one write: one system call however many messages a flush carries. */
  sendDeliveries(deliveries: readonly Delivery[], frames: WireFormat<Buffer>): boolean {
    return this.sendFrame(encodeBatch(deliveries, frames));
  }

  /** The deliveries joined by `batch` (several messages to a frame), built once for every socket that sends the same, in one write. */
  sendJoined(deliveries: readonly Delivery[], batch: BatchFormat): boolean {
    return this.sendFrame(encodeJoined(deliveries, batch));
  }

  /**
   * A text frame for this socket alone (a reply), written as sendFrame writes: one buffer, one
   * write, where `ws` would cork its header and payload into a writev through the stream.
   * Dropped when the socket is closing or closed.
   */
  sendText(text: string): void {
    if (this.isOpen) this.sendFrame(textFrame(text));
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }

  #slowConsumer(): void {
    this.close(CLOSE.policyViolation, 'slow consumer: send buffer full');
    // A peer that reads nothing will not read the close frame either.
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }
}

/**
 * Node keeps a socket's peer address, once read, in an object of its own (`_peername`) for as long
 * as the socket. The upgrade read it and what needs it keeps the string; nothing reads it again but
 * the debug logs (as the connection closes: not forgotten then), and a read while the socket is
 * open asks the system again. Set to undefined, not deleted, so the socket keeps its shape.
 */
function forgetPeerAddress(socket: Duplex): void {
  const cached = socket as { _peername?: unknown };
  if (cached._peername !== undefined) cached._peername = undefined;
}

/** WebSocket.OPEN, as a constant rather than a lookup on each socket. */
const OPEN = 1;

const PEER = Symbol('herald.peer');
type PeerSocket = WebSocket & { [PEER]: WsPeer };

/** The low 32 bits of what `socket` has read (a small integer, kept without a box); undefined where it does not say. */
function bytesReadBy(socket: Duplex): number | undefined {
  const read = (socket as { bytesRead?: unknown }).bytesRead;
  return typeof read === 'number' ? read | 0 : undefined;
}

function left(this: WebSocket): void {
  const peer = (this as PeerSocket)[PEER];
  peer.shared.open.delete(peer);
  peer.owner?.peerClosed();
}

function receivedByOwner(this: WebSocket, data: RawData, isBinary: boolean): void {
  (this as PeerSocket)[PEER].owner?.received?.(data, isBinary);
  releaseReadChunks(this);
}

/**
 * ws's receiver queues the chunks it reads in an array that, once used, keeps room for 17 (some
 * 150 bytes) while empty, for as long as the socket is open. Emptied with `length = 0`, V8 lets the
 * room go. Only when nothing is queued (between messages), so nothing changes for ws; a ws without
 * that array is left alone.
 */
function releaseReadChunks(ws: WebSocket): void {
  const chunks = (ws as { _receiver?: { _buffers?: unknown } })._receiver?._buffers;
  if (Array.isArray(chunks) && chunks.length === 0) chunks.length = 0;
}

function failed(this: WebSocket, error: Error & { code?: string }): void {
  if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') (this as PeerSocket)[PEER].shared.onTooLarge?.();
}

/** What every peer of a transport shares: one object, not fields per socket. */
export interface PeerShared {
  /** The open peers: each leaves when it closes. */
  readonly open: Set<WsPeer>;
  /** A socket whose unsent bytes pass this is closed as a slow consumer. */
  readonly maxBufferedBytes: number;
  /** Told when a frame is refused for its size. */
  readonly onTooLarge: (() => void) | undefined;
  /** Handles a Bayeux socket's messages. */
  readonly handleBatch: BatchHandler;
  /** One-message Bayeux frames (`[message]`), built once per delivery and shared by every socket that receives them. */
  readonly frames: Formats;
}

interface Formats {
  readonly plain: BatchFormat;
  readonly withIds: BatchFormat;
}

/**
 * Frames one Bayeux socket may hold unhandled before it stops reading the client: each is at most
 * maxPayloadBytes, so this bounds what one socket holds in memory as one body does on HTTP.
 */
export const MAX_WAITING_FRAMES = 8;

/** How long a socket whose session ended for good waits for the client's next connect, to answer it with why. */
const FAREWELL_WAIT_MS = 5_000;

/** What a Bayeux socket's upgrade said beyond its address, which is rarely anything (one object then). */
interface UpgradeSaid {
  readonly browserId: string | undefined;
  readonly token: string | undefined;
  readonly tokenRefused: string | undefined;
  readonly headers: RequestHeaders | undefined;
}

/**
 * Bayeux over one WebSocket. It is also the context of every batch it carries (what its upgrade
 * request said), so an open socket needs no context object of its own.
 */
class BayeuxSocket extends WsPeer implements Stream, PeerOwner, RequestContext, Responder {
  #session: Session | undefined;
  /** The connect held for this socket (nearly always none or one), answered by a frame (respond). */
  #held: HeldReply | undefined;
  /** Further connects held at once (a client that sends a second before the first is answered). */
  #moreHeld: Set<HeldReply> | undefined;
  /** Frames are handled one after another, so a client's messages keep their order: the last one still waiting (none while idle, nor while each is handled in its turn). */
  #chain: Promise<void> | undefined;
  /** Frames received and not yet handled (the one being handled included). */
  #waiting = 0;
  /** The session ended for good while no connect was held: the next reply is the last (sessionClosed). */
  #closeAfterReply: { code: number; text: string } | undefined;
  readonly #said: UpgradeSaid | undefined;

  constructor(
    ws: WebSocket,
    raw: Duplex,
    shared: PeerShared,
    readonly remoteAddress: string | undefined,
    said: UpgradeSaid | undefined,
  ) {
    super(ws, raw, shared);
    this.#said = said;
    this.owner = this;
    this.listenForMessages();
  }

  /** The client's connects come on this socket, after what it was sent (Session.connectArrived). */
  get carriesConnects(): boolean {
    return true;
  }

  get connectionType(): string {
    return WebSocketTransport.connectionType;
  }

  get canSetCookie(): boolean {
    return false;
  }

  get stream(): Stream {
    return this;
  }

  get browserId(): string | undefined {
    return this.#said?.browserId;
  }

  get token(): string | undefined {
    return this.#said?.token;
  }

  get tokenRefused(): string | undefined {
    return this.#said?.tokenRefused;
  }

  get headers(): RequestHeaders | undefined {
    return this.#said?.headers;
  }

  push(deliveries: Delivery[]): boolean {
    // One frame for the flush (`[message]` alone, `[m1,m2,…]` for several), built once for every socket, in one write.
    const frames = this.shared.frames;
    return this.sendJoined(deliveries, this.#session?.messageIds === true ? frames.withIds : frames.plain);
  }

  /**
   * The socket stays open for the client's next handshake unless the reason ends it. A client told
   * not to come back must hear it as a reply, not only as a close code: when no connect was held
   * (it was between two), its next connect on this socket is answered with the reason (the store
   * remembers such sessions), and the socket closes once that is sent, or after FAREWELL_WAIT_MS.
   */
  sessionClosed(reason: CloseReason, note?: string, told = true): void {
    const { endsConnection, closeCode, reconnect } = CLOSE_REASONS[reason];
    if (!endsConnection) return;
    const text = closeTextOf(reason, note);
    if (told || reconnect !== 'none') return this.close(closeCode, text);
    this.#closeAfterReply = { code: closeCode, text };
    setTimeout(() => this.close(closeCode, text), FAREWELL_WAIT_MS).unref();
  }

  received(data: RawData, isBinary: boolean): void {
    if (isBinary) {
      this.close(CLOSE.unsupportedData, 'binary frames are not supported: send Bayeux messages as JSON text');
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(data.toString());
    } catch {
      // A close reason is at most 123 bytes: a fixed one, not the parser's message.
      this.close(CLOSE.invalidPayload, 'malformed JSON');
      return;
    }
    const messages = Array.isArray(parsed) ? parsed : [parsed];
    // `[]` was Faye's keep-alive: nothing to do.
    if (messages.length === 0) return;
    if (!messages.every((m) => typeof m === 'object' && m !== null && !Array.isArray(m))) {
      this.close(CLOSE.invalidPayload, 'a frame must hold a JSON object or an array of objects');
      return;
    }
    // Frames are read faster than a slow handler (an asynchronous service, a remote engine) takes
    // them: past a few waiting, the socket is no longer read, so TCP holds the client back instead
    // of this chain holding everything it sends.
    if (++this.#waiting === MAX_WAITING_FRAMES) this.ws.pause();
    // Nothing before it still being handled: this frame is handled now, in this turn if nothing
    // in it waits (a handshake, a connect) — no promise then.
    this.#chain = this.#chain === undefined ? this.#handle(messages) : this.#chain.then(() => this.#handle(messages));
  }

  /** Handles one frame's messages, then lets the next frame in: a promise while the batch waits for something, else undefined. */
  #handle(messages: unknown[]): Promise<void> | undefined {
    let outcome: BatchOutcome | Promise<BatchOutcome>;
    try {
      outcome = this.shared.handleBatch(messages, this);
    } catch {
      this.#handled(false);
      return undefined;
    }
    if (outcome instanceof Promise) return outcome.then((later) => this.#answerFrame(later), () => this.#handled(false));
    this.#answerFrame(outcome);
    return undefined;
  }

  #answerFrame(outcome: BatchOutcome): void {
    try {
      this.#reply(outcome);
    } catch {
      this.#handled(false);
      return;
    }
    this.#handled(true);
  }

  /** A frame was handled (`ok`), or failed on the way (a bug: the socket closes). */
  #handled(ok: boolean): void {
    if (!ok) this.close(CLOSE.policyViolation, 'internal error');
    if (this.#waiting-- === MAX_WAITING_FRAMES) this.ws.resume();
    if (this.#waiting === 0) this.#chain = undefined;
  }

  #reply(outcome: BatchOutcome): void {
    if (!this.isOpen) return;
    if (outcome.session !== undefined && outcome.session !== this.#session && !outcome.session.isClosed) this.#bind(outcome.session);
    if (outcome.pending === undefined) {
      this.sendText(outcome.body);
      if (this.#closeAfterReply !== undefined) this.close(this.#closeAfterReply.code, this.#closeAfterReply.text);
      return;
    }
    // The socket answers its holds itself: a hold makes no object here.
    const hold = outcome.pending.wait(this);
    if (hold === undefined) return;
    if (this.#held === undefined) this.#held = hold;
    else (this.#moreHeld ??= new Set()).add(hold);
  }

  /** A held connect's answer. */
  respond(body: string, hold: HeldReply): void {
    if (this.#held === hold) this.#held = undefined;
    else this.#moreHeld?.delete(hold);
    this.sendText(body);
  }

  #bind(session: Session): void {
    this.#session?.detachStream(this);
    this.#session = session;
    session.attachStream(this);
  }

  peerClosed(): void {
    this.#session?.detachStream(this);
    this.#session = undefined;
    const held = this.#held;
    const more = this.#moreHeld;
    this.#held = undefined;
    this.#moreHeld = undefined;
    held?.cancel();
    if (more !== undefined) for (const hold of more) hold.cancel();
  }
}
