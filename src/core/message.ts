/**
 * @module
 * A published message, and the shared, encode-once wrapper every recipient's queue holds.
 */
import { MESSAGE_OVERHEAD_BYTES } from './memory-budget.js';

export interface Message {
  /** Herald's id: unique, and strictly increasing within the channel (see ids.ts). */
  readonly id: string;
  /** The concrete channel it was published on (never a pattern). */
  readonly channel: string;
  readonly data: unknown;
  /** Milliseconds since the epoch at which the engine accepted it. */
  readonly publishedAt: number;
  /** Bytes of `data` as JSON, when the engine knows them (for the memory budget). */
  readonly size?: number;
  /**
   * Set on a presence event (presence-events.ts) rather than a published message: it never is in
   * history, and its `id` is empty — no cursor moves past it, so a client that resumes misses
   * nothing it should have had (and sees no event again).
   */
  readonly event?: PresenceEventKind;
}

/** A member joined or left (after the grace window), or the members were counted (a crowded channel). */
export type PresenceEventKind = 'join' | 'leave' | 'count';

/** A presence event on `channel`, to be queued like a message to its subscribers. */
export function presenceEventMessage(channel: string, event: PresenceEventKind, data: unknown, now: number): Message {
  return { id: '', channel, data, publishedAt: now, event };
}

/**
 * Whether every recipient will be able to encode `data`: JSON.parse accepts nesting that
 * JSON.stringify cannot write back, and values may hold cycles or BigInts.
 */
export function isSerialisable(data: unknown): boolean {
  try {
    JSON.stringify(data);
    return true;
  } catch {
    return false;
  }
}

/** `data` as JSON, or undefined when it cannot be serialised (see isSerialisable). */
export function serialise(data: unknown): string | undefined {
  try {
    return JSON.stringify(data);
  } catch {
    return undefined;
  }
}

/** The bytes of `data` as JSON, or undefined when it cannot be serialised (see isSerialisable). */
export function serialisedSize(data: unknown): number | undefined {
  const json = serialise(data);
  return json === undefined ? undefined : Buffer.byteLength(json);
}

/**
 * Turns a message into one wire format's representation (Bayeux JSON, a WebSocket frame, an SSE
 * event, …). `json`: the message's data as JSON when already written (see dataJson).
 */
export interface WireFormat<T = string> {
  encode(message: Message, json?: string): T;
}

/** The message's data as JSON: `json` when the publisher already wrote it, else written now. */
export function dataJson(message: Message, json: string | undefined): string {
  return json ?? JSON.stringify(message.data);
}

/**
 * What a session queue holds. Every recipient of one publish shares the same Delivery, so a
 * message is serialised once per wire format however many sessions receive it.
 */
export class Delivery {
  /** Set once the first recipient took it for sending: publish→deliver latency is measured then, once. */
  sent = false;
  /** How many session queues hold it now (kept by the memory budget, which counts its bytes once). */
  holders = 0;
  #format: WireFormat<unknown> | undefined;
  #encoded: unknown;
  #others: Map<WireFormat<unknown>, unknown> | undefined;
  /** The data as JSON, when the publish wrote it already: every format puts these same bytes in. */
  readonly #json: string | undefined;

  constructor(
    readonly message: Message,
    json?: string,
  ) {
    this.#json = json;
  }

  /** What holding it costs, counted once however many queues share it (see memory-budget.ts). */
  get bytes(): number {
    return (this.message.size ?? 0) + MESSAGE_OVERHEAD_BYTES;
  }

  encode<T>(format: WireFormat<T>): T {
    if (this.#format === format) return this.#encoded as T;
    if (this.#format === undefined) {
      this.#format = format;
      this.#encoded = format.encode(this.message, this.#json);
      return this.#encoded as T;
    }
    this.#others ??= new Map();
    if (this.#others.has(format)) return this.#others.get(format) as T;
    const encoded = format.encode(this.message, this.#json);
    this.#others.set(format, encoded);
    return encoded;
  }
}

/**
 * How several deliveries become one buffer for one write: each one's `part`, joined; a lone
 * delivery is its `single` bytes, kept on the delivery for every socket that sends it alone.
 */
export interface BatchFormat {
  readonly single: WireFormat<Buffer>;
  readonly part: WireFormat<Buffer>;
  join(parts: readonly Buffer[]): Buffer;
}

let lastBatch: { readonly format: object; readonly deliveries: readonly Delivery[]; readonly bytes: Buffer } | undefined;

/**
 * Several deliveries' bytes in one buffer, for one write. A burst queues the same deliveries for
 * every subscriber, so the last batch is remembered: the sockets after the first that take the
 * same ones share its buffer rather than each copying their own.
 */
export function encodeBatch(deliveries: readonly Delivery[], format: WireFormat<Buffer>): Buffer {
  if (deliveries.length === 1) return deliveries[0]!.encode(format);
  return sameAsLast(format, deliveries) ?? remember(format, deliveries, Buffer.concat(partsOf(deliveries, format)));
}

/** The same, joined by `batch` (one frame of several messages, say) rather than put end to end. */
export function encodeJoined(deliveries: readonly Delivery[], batch: BatchFormat): Buffer {
  if (deliveries.length === 1) return deliveries[0]!.encode(batch.single);
  return sameAsLast(batch, deliveries) ?? remember(batch, deliveries, batch.join(partsOf(deliveries, batch.part)));
}

function sameAsLast(format: object, deliveries: readonly Delivery[]): Buffer | undefined {
  const last = lastBatch;
  if (last === undefined || last.format !== format || last.deliveries.length !== deliveries.length) return undefined;
  // A loop, not every(): this runs for each socket of a burst, and a callback would be a closure each time.
  for (let i = 0; i < deliveries.length; i++) if (last.deliveries[i] !== deliveries[i]) return undefined;
  return last.bytes;
}

function remember(format: object, deliveries: readonly Delivery[], bytes: Buffer): Buffer {
  lastBatch = { format, deliveries, bytes };
  return bytes;
}

function partsOf(deliveries: readonly Delivery[], format: WireFormat<Buffer>): Buffer[] {
  const parts = new Array<Buffer>(deliveries.length);
  for (let i = 0; i < deliveries.length; i++) parts[i] = deliveries[i]!.encode(format);
  return parts;
}
