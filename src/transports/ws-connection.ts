/**
 * @module
 * One server-side WebSocket on its upgraded TCP socket: frames read (ws-reader.ts) and written
 * (ws-frames.ts) by hand, the close handshake, keep-alive and a bounded send buffer. The socket's
 * listeners are functions shared by every connection (`this` is the socket, which points to its
 * peer, and the peer to its owner), and no state is kept while a socket is idle beyond the peer's
 * few fields: no closure, emitter, stream or buffer per connection.
 *
 * Closing (RFC 6455 §7): a close frame received is answered with one echoing its code, then the
 * socket ends. Our own close sends a close frame and no data after it, then ends the socket when
 * the client's close frame or its end arrives, and destroys it after CLOSE_TIMEOUT_MS whatever the
 * client does (ws waits 30 s; a client that has not answered in a few seconds is gone or hostile).
 * The owner and the lifecycle log are told once, when the TCP socket closes, with the code the
 * client's close frame carried (1005 without one, 1006 when none came), as ws reported it.
 */
import type { Duplex } from 'node:stream';
import { bufferedBytes, writeToSocket } from './socket-write.js';
import type { LifecycleListener } from './http.js';
import { readFrames, STOPPED } from './ws-reader.js';
import type { FrameSink, ReadState } from './ws-reader.js';
import { CLOSE, closeFrame, PING_FRAME, pongFrame, textFrame } from './ws-frames.js';
import type { BatchFormat, Delivery, WireFormat } from '../core/message.js';
import { encodeBatch, encodeJoined } from '../core/message.js';

/** How long a closing socket waits for the client's close frame or end before it is destroyed. */
export const CLOSE_TIMEOUT_MS = 5_000;

/** A slow consumer reads nothing, so will not read our close frame either: it is cut sooner. */
const SLOW_CONSUMER_GRACE_MS = 1_000;

/** What a peer tells of its socket: an object (the stream on it), not a closure per socket. */
export interface PeerOwner {
  /** The socket closed; told once. */
  peerClosed(): void;
  /** A message arrived: a view the owner must not keep past its return (none is delivered without this method). */
  received?(data: Buffer, isBinary: boolean): void;
}

/** What every peer of a transport shares: one object, not a field or closure per socket. */
export interface PeerShared {
  /** The open peers: each leaves when its socket closes. */
  readonly open: Set<WsPeer<PeerShared>>;
  readonly maxPayloadBytes: number;
  /** A socket whose unsent bytes pass this is closed as a slow consumer. */
  readonly maxBufferedBytes: number;
  /** How long a closing socket waits for the client (CLOSE_TIMEOUT_MS unless a test says otherwise). */
  readonly closeTimeoutMs: number;
  /** Told when a message is refused for its size. */
  readonly onTooLarge: (() => void) | undefined;
  /** Told when a socket is closed as a slow consumer (its unsent bytes past maxBufferedBytes). */
  readonly onSlowConsumer: (() => void) | undefined;
  readonly lifecycle: LifecycleListener | undefined;
  /** What the lifecycle log says of each open socket (address, path): only while it logs, so a socket costs nothing for it otherwise. */
  readonly logged: Map<WsPeer<PeerShared>, Record<string, unknown>> | undefined;
}

/** The client's close code while none came (RFC 6455 §7.1.5: 1006, closed abnormally). */
const NO_CLOSE_FRAME = 1006;

/**
 * One WebSocket: its owner hears its messages and its end. What speaks a protocol on it extends
 * it (one object per socket); `shared` is the transport's, with what that protocol needs.
 */
export class WsPeer<Shared extends PeerShared = PeerShared> implements FrameSink {
  owner: PeerOwner | undefined;
  #alive = true;
  /** What the reader keeps between chunks (none while idle); STOPPED once nothing more is read. */
  #read: ReadState = undefined;
  /** Our close frame is sent: no data frame follows it. */
  #closeSent = false;
  /** The client's close code (and reason): NO_CLOSE_FRAME until its close frame comes. */
  #closeCode = NO_CLOSE_FRAME;
  #closeReason = '';
  #closeTimer: NodeJS.Timeout | undefined;
  /** The payload of the last ping read in the chunk being read: answered once the chunk is read. */
  #pingToAnswer: Buffer | undefined;
  /** We stopped reading the client (pause): a missing pong is not its fault. */
  #paused = false;

  constructor(
    /** The upgraded TCP socket, which the peer reads and writes itself. */
    private readonly raw: Duplex,
    readonly shared: Shared,
  ) {
    (raw as PeerSocket)[PEER] = this;
    shared.open.add(this);
  }

  /** Starts reading: `head` is what arrived with the upgrade request, read first. */
  start(head: Buffer): void {
    const raw = this.raw as Duplex & { setTimeout?(ms: number): void; setNoDelay?(noDelay?: boolean): void };
    // The HTTP server's idle timeout no longer applies (pings keep watch), and frames leave whole.
    raw.setTimeout?.(0);
    raw.setNoDelay?.(true);
    raw.on('data', readChunk);
    raw.on('end', ended);
    raw.on('close', socketClosed);
    // Read now rather than unshifted: a stream already flowing would hand it only to the listeners it has.
    if (head.length > 0) this.read(head);
  }

  /** Data frames may still be sent: no close frame sent, and the socket still writable (not ended, not destroyed). */
  get isOpen(): boolean {
    return !this.#closeSent && this.raw.writable;
  }

  /** The reader's input: one chunk of the socket. */
  read(chunk: Buffer): void {
    const state = this.#read;
    if (state === STOPPED) return;
    this.#read = readFrames(chunk, state, this, this.shared.maxPayloadBytes);
    const ping = this.#pingToAnswer;
    if (ping === undefined) return;
    this.#pingToAnswer = undefined;
    // Through sendFrame, bounded like any frame: a client that pings without reading would
    // otherwise pile its pongs up in our memory.
    this.sendFrame(pongFrame(ping));
  }

  /** Stops reading the client (TCP holds it back) until resume(). */
  pause(): void {
    this.#paused = true;
    this.raw.pause();
  }

  resume(): void {
    this.#paused = false;
    this.raw.resume();
  }

  /**
   * A peer that did not answer the previous ping is dropped — unless we stopped reading it (a slow
   * handler holds its frames back): its pong then waits unread, and says nothing of the client.
   */
  ping(): void {
    if (!this.#alive && !this.#paused) {
      this.terminate();
      return;
    }
    this.#alive = false;
    if (this.isOpen) writeToSocket(this.raw, PING_FRAME);
  }

  /**
   * Writes a complete frame built once for every recipient; false when the socket is closing or
   * closed (nothing written).
   */
  sendFrame(frame: Buffer): boolean {
    if (!this.isOpen) return false;
    const raw = this.raw;
    writeToSocket(raw, frame);
    // The socket's own count (plus what direct writes left with libuv), checked once per delivery.
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

  /** A text frame for this socket alone (a reply), written as sendFrame writes: one buffer, one write. Dropped once closing. */
  sendText(text: string): void {
    if (this.isOpen) this.sendFrame(textFrame(text));
  }

  /** Sends a close frame (once) and nothing after it; the socket ends when the client answers, or is cut after the close timeout. */
  close(code: number, reason: string): void {
    this.#sendClose(code, reason);
  }

  terminate(): void {
    this.raw.destroy();
  }

  // FrameSink: what the reader found.

  message(data: Buffer, binary: boolean): void {
    // After our close frame the client's data is no longer wanted (RFC 6455 §1.4).
    if (!this.#closeSent) this.owner?.received?.(data, binary);
  }

  /**
   * Answered once the chunk is read, and only the last ping in it (RFC 6455 §5.5.3 allows it): a
   * pong per ping costs a write per ping, and a chunk of six-byte pings made the server do ten
   * thousand system calls (11× the CPU of reading any other frame). The payload is a view of the
   * chunk, which nothing changes before the answer.
   */
  pinged(data: Buffer): void {
    this.#pingToAnswer = data;
  }

  /** The client answered a ping (or sent a pong of its own): it is alive. */
  ponged(): void {
    this.#alive = true;
  }

  closeReceived(code: number, reason: string): void {
    this.#closeCode = code;
    this.#closeReason = reason;
    // Echo the code (or an empty close for one that had none), then end: the handshake is done.
    this.#sendClose(code === 1005 ? undefined : code, '');
    this.#finish();
  }

  failed(code: number, reason: string): void {
    if (code === CLOSE.messageTooBig) this.shared.onTooLarge?.();
    this.#sendClose(code, reason);
    // Nothing more is read from a client that broke the protocol (§7.1.7): end once the close is out.
    this.#finish();
  }

  /** The client ended its side: nothing more will come; ours ends too. */
  clientEnded(): void {
    this.#read = STOPPED;
    this.raw.end();
  }

  /** The TCP socket closed: told once to the owner and the log. */
  socketClosed(): void {
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
    this.#read = STOPPED;
    const shared = this.shared;
    shared.open.delete(this);
    this.owner?.peerClosed();
    const logged = shared.logged?.get(this);
    if (logged === undefined) return;
    shared.logged!.delete(this);
    shared.lifecycle?.('websocket closed', { ...logged, code: this.#closeCode, reason: this.#closeReason });
  }

  #sendClose(code: number | undefined, reason: string): void {
    if (this.#closeSent || this.raw.destroyed) return;
    this.#closeSent = true;
    writeToSocket(this.raw, closeFrame(code, reason));
    this.#armCloseTimer(this.shared.closeTimeoutMs);
  }

  /** Reading stops and the socket ends once what was written is out (the client then closes its side). */
  #finish(): void {
    this.#read = STOPPED;
    this.raw.end();
    // A paused socket would never see the client's end.
    this.raw.resume();
  }

  #armCloseTimer(ms: number): void {
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#closeTimer = setTimeout(destroyLate, ms, this.raw);
    this.#closeTimer.unref();
  }

  #slowConsumer(): void {
    // Once per socket: sendFrame writes nothing after the close frame.
    this.shared.onSlowConsumer?.();
    this.close(CLOSE.policyViolation, 'slow consumer: send buffer full');
    this.#armCloseTimer(SLOW_CONSUMER_GRACE_MS);
  }
}

const PEER = Symbol('herald.peer');
type PeerSocket = Duplex & { [PEER]: WsPeer<PeerShared> };

function readChunk(this: Duplex, chunk: Buffer): void {
  (this as PeerSocket)[PEER].read(chunk);
}

function ended(this: Duplex): void {
  (this as PeerSocket)[PEER].clientEnded();
}

function socketClosed(this: Duplex): void {
  (this as PeerSocket)[PEER].socketClosed();
}

function destroyLate(socket: Duplex): void {
  socket.destroy();
}
