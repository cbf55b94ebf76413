/**
 * @module
 * A published message, and the shared, encode-once wrapper every recipient's queue holds.
 */

export interface Message {
  /** Herald's id: unique, and strictly increasing within the channel (see ids.ts). */
  readonly id: string;
  /** The concrete channel it was published on (never a pattern). */
  readonly channel: string;
  readonly data: unknown;
  /** Milliseconds since the epoch at which the engine accepted it. */
  readonly publishedAt: number;
}

/** Turns a message into the bytes of one wire format (Bayeux JSON, SSE event, …). */
export interface WireFormat {
  encode(message: Message): string;
}

/**
 * What a session queue holds. Every recipient of one publish shares the same Delivery, so a
 * message is serialised once per wire format however many sessions receive it.
 */
export class Delivery {
  #format: WireFormat | undefined;
  #encoded = '';
  #others: Map<WireFormat, string> | undefined;

  constructor(readonly message: Message) {}

  encode(format: WireFormat): string {
    if (this.#format === format) return this.#encoded;
    if (this.#format === undefined) {
      this.#format = format;
      this.#encoded = format.encode(this.message);
      return this.#encoded;
    }
    this.#others ??= new Map();
    let encoded = this.#others.get(format);
    if (encoded === undefined) {
      encoded = format.encode(this.message);
      this.#others.set(format, encoded);
    }
    return encoded;
  }
}
