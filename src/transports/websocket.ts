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
import { CLOSE_REASONS, closeTextOf } from '../core/close-reasons.js';
import type { CloseReason } from '../core/close-reasons.js';
import type { BatchFormat, Delivery, Message, WireFormat } from '../core/message.js';
import type { BatchHandler, BatchOutcome, HeldReply, RequestContext, Responder } from '../core/protocol.js';
import type { Session, Stream } from '../core/session.js';
import { clientAddress, destroyOnError, readCookie, readToken } from './http.js';
import type { LifecycleListener } from './http.js';
import { BROWSER_COOKIE } from './long-polling.js';
import { CLOSE_TIMEOUT_MS, WsPeer } from './ws-connection.js';
import type { PeerOwner, PeerShared } from './ws-connection.js';
import { bayeuxFrames, CLOSE, textFrame } from './ws-frames.js';
import { completeHandshake } from './ws-handshake.js';

export interface WebSocketOptions {
  /** Largest message accepted; larger ones close the socket with 1009. */
  readonly maxPayloadBytes: number;
  /** A socket whose unsent bytes exceed this is closed as a slow consumer instead of growing memory. */
  readonly maxBufferedBytes: number;
  /** Ping period; a peer that has not answered the previous ping by the next one is dropped. */
  readonly pingIntervalMs: number;
  /** Told when a message is refused for its size (a metric). */
  readonly onTooLarge?: () => void;
  /** Told when a socket is closed as a slow consumer (a metric). */
  readonly onSlowConsumer?: () => void;
  readonly lifecycle?: LifecycleListener;
  /** How long a closing socket waits for the client's answer before it is cut (default CLOSE_TIMEOUT_MS). */
  readonly closeTimeoutMs?: number;
  /** Encode one delivery as the JSON of one message: plain, or with its id for sessions that resume. */
  readonly messageFormats: { readonly plain: WireFormat; readonly withIds: WireFormat };
  /**
   * What of its upgrade's headers a Bayeux socket keeps for the messages it will carry (asked once,
   * at the upgrade): an idle socket should hold none that nothing reads. Default: none.
   */
  readonly keptHeaders?: (headers: IncomingHttpHeaders) => RequestHeaders | undefined;
}

type RequestHeaders = NonNullable<RequestContext['headers']>;

export class WebSocketTransport {
  static readonly connectionType = 'websocket';

  readonly #peers = new Set<WsPeer>();
  /** What every peer shares: one object, not a field or closure per socket. */
  readonly #shared: TransportShared;
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
      maxPayloadBytes: options.maxPayloadBytes,
      maxBufferedBytes: options.maxBufferedBytes,
      closeTimeoutMs: options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS,
      onTooLarge: options.onTooLarge,
      onSlowConsumer: options.onSlowConsumer,
      lifecycle: options.lifecycle,
      logged: options.lifecycle === undefined ? undefined : new Map(),
      handleBatch,
      frames: { plain: framesOf(plain), withIds: framesOf(withIds) },
    };
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
    this.accept(req, socket, head, (raw, shared) => new BayeuxSocket(raw, shared, remoteAddress, said));
  }

  /**
   * Completes any checked upgrade into a kept-alive, bounded peer that `open` makes (the REST API
   * uses it too), or refuses it (ws-handshake.ts). Nothing the open socket keeps refers to `req`:
   * an idle socket holds no request or headers.
   */
  accept(req: IncomingMessage, socket: Duplex, head: Buffer, open: (raw: Duplex, shared: TransportShared) => WsPeer): void {
    // One 'error' listener for the socket's life, whoever took the upgrade: I/O errors close it.
    socket.off('error', destroyOnError);
    socket.on('error', destroyOnError);
    if (!completeHandshake(req, socket)) return;
    const shared = this.#shared;
    const peer = open(socket, shared);
    if (shared.logged === undefined) {
      forgetPeerAddress(socket);
    } else {
      const fields = { address: clientAddress(req), path: req.url?.split('?')[0] };
      shared.logged.set(peer, fields);
      shared.lifecycle!('websocket opened', fields);
    }
    peer.start(head);
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

/** What every peer of this transport shares: the connection's needs, and a Bayeux socket's. */
export interface TransportShared extends PeerShared {
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
class BayeuxSocket extends WsPeer<TransportShared> implements Stream, PeerOwner, RequestContext, Responder {
  #session: Session | undefined;
  /** The connect held for this socket (nearly always none or one), answered by a frame (respond). */
  #held: HeldReply | undefined;
  /** Further connects held at once (a client that sends a second before the first is answered). */
  #moreHeld: Set<HeldReply> | undefined;
  /** Frames are handled one after another, so a client's messages keep their order: the last one still waiting (none while idle, nor while each is handled in its turn). */
  #chain: Promise<void> | undefined;
  /** Frames received and not yet handled (the one being handled included). */
  #waiting = 0;
  /** The session ended and a reply it owes is still to go (sessionClosed): the socket closes once it is sent. */
  #closeAfterReply: { code: number; text: string } | undefined;
  readonly #said: UpgradeSaid | undefined;

  constructor(
    raw: Duplex,
    shared: TransportShared,
    readonly remoteAddress: string | undefined,
    said: UpgradeSaid | undefined,
  ) {
    super(raw, shared);
    this.#said = said;
    this.owner = this;
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
   * remembers such sessions), and the socket closes once that is sent, or after FAREWELL_WAIT_MS;
   * likewise once a held connect's answer, which an asynchronous extension delays, is sent.
   */
  sessionClosed(reason: CloseReason, note?: string, told = true): void {
    const { endsConnection, closeCode, reconnect } = CLOSE_REASONS[reason];
    if (!endsConnection) return;
    const text = closeTextOf(reason, note);
    // Told: the held connect has its answer, but an asynchronous extension may still be writing
    // it (the socket still holds it until respond): the close waits for it, or it would be lost.
    const replyOwed = told ? this.#holds : reconnect === 'none';
    if (!replyOwed) return this.close(closeCode, text);
    this.#closeAfterReply = { code: closeCode, text };
    setTimeout(() => this.close(closeCode, text), FAREWELL_WAIT_MS).unref();
  }

  /** A connect is held on this socket, its answer not yet sent. */
  get #holds(): boolean {
    return this.#held !== undefined || (this.#moreHeld !== undefined && this.#moreHeld.size > 0);
  }

  /** After a reply: the socket closes if the session ended and no held connect still owes its answer. */
  #closeIfDone(): void {
    const after = this.#closeAfterReply;
    if (after !== undefined && !this.#holds) this.close(after.code, after.text);
  }

  received(data: Buffer, isBinary: boolean): void {
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
    if (++this.#waiting === MAX_WAITING_FRAMES) this.pause();
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
    if (this.#waiting-- === MAX_WAITING_FRAMES) this.resume();
    if (this.#waiting === 0) this.#chain = undefined;
  }

  #reply(outcome: BatchOutcome): void {
    if (!this.isOpen) return;
    if (outcome.session !== undefined && outcome.session !== this.#session && !outcome.session.isClosed) this.#bind(outcome.session);
    if (outcome.pending === undefined) {
      this.sendText(outcome.body);
      this.#closeIfDone();
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
    this.#closeIfDone();
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
