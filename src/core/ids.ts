/**
 * @module
 * Identifiers: unguessable session ids and sortable message ids.
 */
import { hash, randomFillSync } from 'node:crypto';

const ID_BYTES = 20;
/** Random bytes for the next ids, drawn from the CSPRNG 256 ids at a time (a call per id cost microseconds per connection). */
const pool = Buffer.alloc(ID_BYTES * 256);
let used = pool.length;

/** A 160-bit random id as 40 lowercase hex characters (Bayeux wants alphanumeric clientIds). */
export function randomId(): string {
  if (used === pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const id = pool.toString('hex', used, used + ID_BYTES);
  used += ID_BYTES;
  return id;
}

/**
 * The public id of a session (presence, inspection, the control plane): derived from its id, from
 * which it cannot be turned back. 16 bytes of the digest, 22 characters: a string of its own, where
 * a slice of the whole digest's text would keep that text alive too.
 */
export function publicIdOf(sessionId: string): string {
  return hash('sha256', sessionId, 'buffer').toString('base64url', 0, 16);
}

const MESSAGE_ID = /^[0-9a-z]{1,64}$/;

/** Whether text a client sent could be a message id (to resume from): what every door accepts. */
export function isMessageId(text: unknown): text is string {
  return typeof text === 'string' && MESSAGE_ID.test(text);
}

const TIME_WIDTH = 9; // base36 milliseconds: enough until the year 5188
const SEQ_WIDTH = 4;
const SEQ_LIMIT = 36 ** SEQ_WIDTH;

/**
 * Message ids: 13 base36 characters, milliseconds then a sequence number, so that ids compare
 * correctly as plain strings and stay increasing across restarts of a store that keeps time.
 * Strictly increasing even when the wall clock steps back or one millisecond sees more than
 * 36^4 messages: the generator then borrows from the next millisecond.
 */
export class MessageIdGenerator {
  #lastMs = 0;
  #seq = 0;

  constructor(private readonly now: () => number = Date.now) {}

  next(): string {
    const ms = this.now();
    if (ms > this.#lastMs) {
      this.#lastMs = ms;
      this.#seq = 0;
    } else if (++this.#seq >= SEQ_LIMIT) {
      this.#lastMs++;
      this.#seq = 0;
    }
    return this.#lastMs.toString(36).padStart(TIME_WIDTH, '0') + this.#seq.toString(36).padStart(SEQ_WIDTH, '0');
  }

  /** Whether `id` sorts after every id this generator could have given by now (see isFutureId). */
  isFuture(id: string): boolean {
    return isFutureId(id, Math.max(this.#lastMs, this.now()));
  }
}

/**
 * Whether `id` sorts after every id issued up to millisecond `nowMs`: not a message id (nor a
 * position) the engine gave. A client that resumes from one — forged, taken from another
 * cluster's or channel's cursor, or from a clock that ran ahead — would otherwise wait, until that
 * time comes, for messages that all sort before it: engines report such a resume as a gap, and
 * the reader continues from the channel's position.
 */
export function isFutureId(id: string, nowMs: number): boolean {
  return id > nowMs.toString(36).padStart(TIME_WIDTH, '0') + 'z'.repeat(SEQ_WIDTH);
}
