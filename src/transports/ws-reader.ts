/**
 * @module
 * Client-to-server WebSocket frames (RFC 6455 §5), read from the socket's chunks as they come. A
 * chunk that holds whole frames is read in place: each payload is unmasked where it lies and
 * handed on as a view of the chunk, so nothing is allocated but that view. Only a frame cut by
 * the chunk's end, or a message in fragments, needs state kept between chunks (a PartialRead);
 * an idle socket holds none.
 *
 * Refused, with the close code the RFC names: an unmasked frame, RSV bits (no extension is ever
 * negotiated), an unknown opcode, a fragmented or oversized control frame, a continuation with no
 * message begun or a new message inside a fragmented one (1002); a message longer than the limit,
 * counted from frame headers before a byte of it is kept (1009); text that is not UTF-8 (1007).
 */
import { isUtf8 } from 'node:buffer';
import { CLOSE } from './ws-frames.js';

/** What the frames of one connection say. */
export interface FrameSink {
  /** A whole message: text (checked UTF-8) or binary, a view the sink must not keep past its return. */
  message(data: Buffer, binary: boolean): void;
  /** A ping with its payload (to send back in a pong). */
  pinged(data: Buffer): void;
  ponged(): void;
  /** The client's close frame: its code (1005 when it gave none, §7.1.5) and reason, both checked. Nothing after it is read. */
  closeReceived(code: number, reason: string): void;
  /** The client broke the protocol: close with `code`. Nothing after it is read. */
  failed(code: number, reason: string): void;
}

/** The close codes a read can fail with (RFC 6455 §7.4.1), from the one table of them. */
const { protocolError: PROTOCOL_ERROR, invalidPayload: INVALID_PAYLOAD, messageTooBig: MESSAGE_TOO_BIG } = CLOSE;

/** What a read of a connection keeps between chunks: only while a frame or a fragmented message is incomplete. */
export class PartialRead {
  /** The start of a frame header cut by a chunk's end (at most 14 bytes). */
  head: Buffer | undefined;
  headLength = 0;
  /**
   * The bytes so far of a frame's payload cut by a chunk's end (`filled` of them), copied into a
   * buffer grown as they arrive, and the length its header claims. Never allocated from that
   * length alone (fourteen bytes would make the server hold the limit), nor kept as the chunks
   * they came in: a client sending a byte per TCP segment would cost a buffer object per byte,
   * two hundred times what it sent. Grown by doubling, so it holds at most twice what came.
   */
  payload: Buffer | undefined;
  payloadLength = 0;
  filled = 0;
  payloadOpcode = 0;
  payloadFin = false;
  payloadMask = 0;
  /** The frames so far of a fragmented message (copies: the chunks they came in are let go), and its opcode. */
  fragments: Buffer[] | undefined;
  fragmentBytes = 0;
  fragmentOpcode = 0;
}

/** The state after a chunk: none (between frames, no message begun), partial, or STOPPED (failed or closed: read no more). */
export type ReadState = PartialRead | undefined | null;
export const STOPPED = null;

// The header parseHeader last read: module fields rather than an object per frame.
let fin = false;
let opcode = 0;
let length = 0;
let mask = 0;
/** Why parseHeader refused a header. */
let refusal = '';

const MAX_HEADER = 14;

/** Fragments (with a payload) one message may come in; past it the message is refused with 1009. */
export const MAX_FRAGMENTS = 1024;

/**
 * Reads `chunk` from the socket: hands complete messages and control frames to `sink`, and
 * returns what must be kept for the next chunk. `maxPayload`: the largest message accepted.
 */
export function readFrames(chunk: Buffer, state: PartialRead | undefined, sink: FrameSink, maxPayload: number): ReadState {
  let at = 0;
  if (state?.payload !== undefined) {
    // The rest of a frame's payload.
    const take = Math.min(chunk.length, state.payloadLength - state.filled);
    keepPayload(state, chunk, 0, take);
    if (state.filled < state.payloadLength) return state;
    at = take;
    // Filled to the length claimed, which its growth never passes: the buffer is the payload.
    const payload = state.payload!;
    state.payload = undefined;
    unmask(payload, 0, payload.length, state.payloadMask);
    if (frameDone(state.payloadOpcode, state.payloadFin, payload, state, sink, true) === STOPPED) return STOPPED;
  } else if (state !== undefined && state.headLength > 0) {
    // The rest of a frame's header: completed in its small buffer, then read as any other.
    const head = state.head!;
    const had = state.headLength;
    const take = Math.min(chunk.length, MAX_HEADER - had);
    chunk.copy(head, had, 0, take);
    const headerLength = parseHeader(head, 0, had + take, state, maxPayload);
    if (headerLength < 0) return fail(sink, -headerLength);
    if (headerLength === 0) {
      state.headLength = had + take;
      return state;
    }
    state.headLength = 0;
    const read = payloadOf(chunk, headerLength - had, state, sink);
    if (read === STOPPED) return STOPPED;
    state = read;
    at = nextAt;
  }
  while (at < chunk.length) {
    const headerLength = parseHeader(chunk, at, chunk.length, state, maxPayload);
    if (headerLength < 0) return fail(sink, -headerLength);
    if (headerLength === 0) {
      // The header is cut: keep its start for the next chunk.
      state ??= new PartialRead();
      // Not from the shared pool: a few bytes kept would hold a whole pool slab.
      state.head ??= Buffer.alloc(MAX_HEADER);
      state.headLength = chunk.copy(state.head, 0, at);
      return state;
    }
    const read = payloadOf(chunk, at + headerLength, state, sink);
    if (read === STOPPED) return STOPPED;
    state = read;
    at = nextAt;
  }
  return idle(state);
}

/**
 * The payload of the frame whose header was just read, from `at` in `chunk`: handed on if whole,
 * else kept. Returns the state, and sets nextAt to where the next frame starts.
 */
function payloadOf(chunk: Buffer, at: number, state: PartialRead | undefined, sink: FrameSink): ReadState {
  if (chunk.length - at >= length) {
    // Kept in locals: the sink may read another socket's frames before this returns.
    const end = at + length;
    const payload = chunk.subarray(at, end);
    unmask(payload, 0, length, mask);
    const after = frameDone(opcode, fin, payload, state, sink, false);
    nextAt = end;
    return after;
  }
  // Cut by the chunk's end: kept as it comes (PartialRead.payload).
  state ??= new PartialRead();
  state.payloadLength = length;
  state.filled = 0;
  keepPayload(state, chunk, at, chunk.length);
  state.payloadOpcode = opcode;
  state.payloadFin = fin;
  state.payloadMask = mask;
  nextAt = chunk.length;
  return state;
}

/** Where the frame after the one payloadOf read starts. */
let nextAt = 0;

/** The least a cut payload's buffer starts with (or its length, if less): a few small chunks do not regrow it. */
const MIN_PAYLOAD_BUFFER = 1024;

/** Appends `chunk[from, to)` to the cut payload, growing its buffer by doubling, never past the length claimed. */
function keepPayload(state: PartialRead, chunk: Buffer, from: number, to: number): void {
  const filled = state.filled + to - from;
  const kept = state.payload;
  if (kept === undefined || filled > kept.length) {
    // Not from the shared pool: a few bytes kept would hold a whole pool slab.
    const grown = Buffer.allocUnsafeSlow(Math.min(state.payloadLength, Math.max(filled, 2 * (kept?.length ?? 0), MIN_PAYLOAD_BUFFER)));
    kept?.copy(grown, 0, 0, state.filled);
    state.payload = grown;
  }
  chunk.copy(state.payload!, state.filled, from, to);
  state.filled = filled;
}

/**
 * Reads one frame's header from `buf` between `at` and `end`: its length, 0 if cut short, or minus
 * the close code when the frame is refused. Sets fin, opcode, length and mask.
 */
function parseHeader(buf: Buffer, at: number, end: number, state: PartialRead | undefined, maxPayload: number): number {
  if (end - at < 2) return 0;
  const first = buf[at]!;
  const second = buf[at + 1]!;
  fin = (first & 0x80) !== 0;
  opcode = first & 0x0f;
  if ((first & 0x70) !== 0) return refuse(PROTOCOL_ERROR, 'RSV bits set: no extension was negotiated');
  if ((second & 0x80) === 0) return refuse(PROTOCOL_ERROR, 'a client frame must be masked');
  length = second & 0x7f;
  if (opcode >= 8) {
    if (opcode > 10) return refuse(PROTOCOL_ERROR, `unknown opcode ${opcode}`);
    if (!fin) return refuse(PROTOCOL_ERROR, 'a control frame must not be fragmented');
    if (length > 125) return refuse(PROTOCOL_ERROR, 'a control frame must be at most 125 bytes');
  } else if (opcode > 2) {
    return refuse(PROTOCOL_ERROR, `unknown opcode ${opcode}`);
  } else if (opcode === 0 && state?.fragments === undefined) {
    return refuse(PROTOCOL_ERROR, 'a continuation frame with no message begun');
  } else if (opcode !== 0 && state?.fragments !== undefined) {
    return refuse(PROTOCOL_ERROR, 'a new message inside a fragmented one');
  }
  let headerLength = 6;
  if (length === 126) {
    if (end - at < 8) return 0;
    length = buf.readUInt16BE(at + 2);
    headerLength = 8;
  } else if (length === 127) {
    if (end - at < 14) return 0;
    const high = buf.readUInt32BE(at + 2);
    // Past 2^53 − 1 a length is no longer an exact number.
    if (high > 0x1f_ffff) return refuse(MESSAGE_TOO_BIG, 'a frame longer than 2^53 - 1 bytes');
    length = high * 0x1_0000_0000 + buf.readUInt32BE(at + 6);
    headerLength = 14;
  } else if (end - at < 6) {
    return 0;
  }
  if (opcode < 8 && length + (state?.fragmentBytes ?? 0) > maxPayload) return refuse(MESSAGE_TOO_BIG, `a message larger than ${maxPayload} bytes`);
  mask = buf.readUInt32BE(at + headerLength - 4);
  return headerLength;
}

function refuse(code: number, why: string): number {
  refusal = why;
  return -code;
}

function fail(sink: FrameSink, code: number): null {
  sink.failed(code, refusal);
  return STOPPED;
}

/** XORs `data[from, to)` with the 4-byte mask, in place (RFC 6455 §5.3). */
function unmask(data: Buffer, from: number, to: number, key: number): void {
  if (key === 0) return;
  const k0 = key >>> 24;
  const k1 = (key >>> 16) & 0xff;
  const k2 = (key >>> 8) & 0xff;
  const k3 = key & 0xff;
  let i = from;
  for (; i + 3 < to; i += 4) {
    data[i] = data[i]! ^ k0;
    data[i + 1] = data[i + 1]! ^ k1;
    data[i + 2] = data[i + 2]! ^ k2;
    data[i + 3] = data[i + 3]! ^ k3;
  }
  if (i < to) data[i] = data[i]! ^ k0;
  if (i + 1 < to) data[i + 1] = data[i + 1]! ^ k1;
  if (i + 2 < to) data[i + 2] = data[i + 2]! ^ k2;
}

/**
 * One whole, unmasked frame: a control frame or message handed to the sink, a fragment kept.
 * Returns the state to keep (a fragmented message's first frame creates it), or STOPPED.
 * `owned`: the payload is a buffer of its own, not a view of a chunk.
 */
function frameDone(op: number, last: boolean, payload: Buffer, state: PartialRead | undefined, sink: FrameSink, owned: boolean): ReadState {
  if (op >= 8) return controlFrame(op, payload, sink) ? state : STOPPED;
  if (op !== 0 && last) return message(op, payload, sink) ? state : STOPPED;
  if (op !== 0) {
    // The first frame of a fragmented message.
    state ??= new PartialRead();
    state.fragments = [];
    state.fragmentBytes = 0;
    state.fragmentOpcode = op;
  }
  const fragments = state!.fragments!;
  if (fragments.length === MAX_FRAGMENTS) {
    // Each kept fragment costs a buffer's overhead beside its bytes: a message in one-byte pieces
    // would cost the server a hundred times its size.
    sink.failed(MESSAGE_TOO_BIG, `a message in more than ${MAX_FRAGMENTS} fragments`);
    return STOPPED;
  }
  if (payload.length > 0) {
    fragments.push(owned ? payload : Buffer.from(payload));
    state!.fragmentBytes += payload.length;
  }
  // (The limit was checked on each frame's header, fragments before it counted.)
  if (!last) return state;
  const whole = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments, state!.fragmentBytes);
  const wholeOpcode = state!.fragmentOpcode;
  state!.fragments = undefined;
  state!.fragmentBytes = 0;
  return message(wholeOpcode, whole, sink) ? state : STOPPED;
}

function message(op: number, payload: Buffer, sink: FrameSink): boolean {
  if (op === 1 && !isUtf8(payload)) {
    sink.failed(INVALID_PAYLOAD, 'a text message that is not UTF-8');
    return false;
  }
  sink.message(payload, op === 2);
  return true;
}

function controlFrame(op: number, payload: Buffer, sink: FrameSink): boolean {
  if (op === 9) sink.pinged(payload);
  else if (op === 10) sink.ponged();
  else return closeFrame(payload, sink);
  return true;
}

/** A close frame: its code and reason checked (RFC 6455 §5.5.1, §7.4), then told; reading stops. */
function closeFrame(payload: Buffer, sink: FrameSink): false {
  if (payload.length === 0) {
    sink.closeReceived(1005, '');
    return false;
  }
  if (payload.length === 1) {
    sink.failed(PROTOCOL_ERROR, 'a close frame with a 1-byte payload');
    return false;
  }
  const code = payload.readUInt16BE(0);
  if (!isValidCloseCode(code)) {
    sink.failed(PROTOCOL_ERROR, `invalid close code ${code}`);
    return false;
  }
  const reason = payload.subarray(2);
  if (!isUtf8(reason)) {
    sink.failed(INVALID_PAYLOAD, 'a close reason that is not UTF-8');
    return false;
  }
  sink.closeReceived(code, reason.toString());
  return false;
}

/** Codes a close frame may carry (RFC 6455 §7.4.1–2, IANA registry): not 1004–1006 (reserved, or only for reports), not 1015. */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** The state with nothing left in it is none: an idle socket keeps nothing. */
function idle(state: PartialRead | undefined): PartialRead | undefined {
  return state === undefined || state.fragments !== undefined || state.payload !== undefined || state.headLength > 0 ? state : undefined;
}
