/**
 * @module
 * Server-to-client WebSocket frames built by hand (RFC 6455 §5.2: FIN, no mask), so that a
 * message's frame, or a flush's, is built once and written as is to every socket that sends it;
 * and the few control frames a connection sends (close, ping, pong).
 */

/** RFC 6455 §7.4.1 close codes Herald sends: its own reasons and the reader's refusals, in one table. */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  unsupportedData: 1003,
  invalidPayload: 1007,
  policyViolation: 1008,
  messageTooBig: 1009,
  tryAgainLater: 1013,
} as const;

/**
 * A complete server-to-client text frame (RFC 6455 §5.2: FIN, opcode 1, no mask) of `text`,
 * encoded straight into it: header and payload in one buffer, so one message's frame is built
 * once and written as is to every socket, and a reply leaves in one write.
 */
export function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const frame = Buffer.allocUnsafe(frameHeaderLength(length) + length);
  frame.write(text, writeFrameHeader(frame, 0, length));
  return frame;
}

/** RFC 6455 §5.5.1: at most 125 payload bytes, two of them the code. */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * A close frame with `code` and `reason` (cut to 123 bytes, never inside a character), or with
 * no payload when `code` is undefined (answering a close that carried none, §5.5.1).
 */
export function closeFrame(code: number | undefined, reason = ''): Buffer {
  if (code === undefined) return Buffer.from([0x88, 0]);
  const frame = Buffer.allocUnsafe(4 + MAX_CLOSE_REASON_BYTES);
  frame[0] = 0x88;
  frame.writeUInt16BE(code, 2);
  const length = frame.write(reason, 4, MAX_CLOSE_REASON_BYTES);
  // write() stops before a character that does not fit whole, so the cut is valid UTF-8.
  frame[1] = 2 + length;
  return frame.subarray(0, 4 + length);
}

/** The server's ping: no payload, and the same bytes for every socket. */
export const PING_FRAME = Buffer.from([0x89, 0]);

/** A pong answering a ping, with its payload (at most 125 bytes: the reader refuses longer control frames). */
export function pongFrame(payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(2 + payload.length);
  frame[0] = 0x8a;
  frame[1] = payload.length;
  payload.copy(frame, 2);
  return frame;
}

function frameHeaderLength(payloadLength: number): number {
  return payloadLength < 126 ? 2 : payloadLength < 65_536 ? 4 : 10;
}

/** Writes a text frame's header for `payloadLength` bytes at `offset`; returns where the payload starts. */
function writeFrameHeader(frame: Buffer, offset: number, payloadLength: number): number {
  frame[offset] = 0x81;
  if (payloadLength < 126) {
    frame[offset + 1] = payloadLength;
    return offset + 2;
  }
  if (payloadLength < 65_536) {
    frame[offset + 1] = 126;
    frame.writeUInt16BE(payloadLength, offset + 2);
    return offset + 4;
  }
  frame[offset + 1] = 127;
  frame.writeBigUInt64BE(BigInt(payloadLength), offset + 2);
  return offset + 10;
}

/**
 * Payload bytes past which a gathered Bayeux batch starts another frame. Clients may cap the size
 * of one WebSocket message (64 KiB is a common default): a batch never makes a frame larger than
 * this, or than its largest message alone, which went in a frame of its own before batches did.
 */
export const MAX_BATCH_FRAME_BYTES = 64 * 1024;

/**
 * Messages' JSON (`parts`) as Bayeux frames, each a JSON array of as many as fit in
 * MAX_BATCH_FRAME_BYTES (a burst of small messages: one frame), in order, all in one buffer for
 * one write. One frame of ten messages is the payload of ten and a comma each, where ten frames
 * of one cost a header and brackets each and ten messages for the client to take apart.
 */
export function bayeuxFrames(parts: readonly Buffer[]): Buffer {
  if (parts.length === 0) return Buffer.alloc(0);
  // Each frame's payload length first (brackets, messages, commas: one byte more per message,
  // and one), then one buffer for them all.
  const payloads: number[] = [];
  let payload = 1;
  for (const part of parts) {
    if (payload > 1 && payload + 1 + part.length > MAX_BATCH_FRAME_BYTES) {
      payloads.push(payload);
      payload = 1;
    }
    payload += 1 + part.length;
  }
  payloads.push(payload);
  let total = 0;
  for (const length of payloads) total += frameHeaderLength(length) + length;
  const frames = Buffer.allocUnsafe(total);
  let at = 0;
  let next = 0;
  for (const length of payloads) {
    at = writeFrameHeader(frames, at, length);
    const end = at + length - 1;
    frames[at++] = 0x5b; // [
    for (let first = true; at < end; first = false) {
      if (!first) frames[at++] = 0x2c; // ,
      at += parts[next++]!.copy(frames, at);
    }
    frames[at++] = 0x5d; // ]
  }
  return frames;
}
