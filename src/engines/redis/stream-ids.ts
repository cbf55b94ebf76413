/**
 * @module
 * Herald message ids ⇄ Redis stream ids. A stream id is `<ms>-<seq>` in decimal and does not
 * compare as a string; a Herald id is the same pair in fixed-width base36 (see core/ids.ts), which
 * does. Mapping one onto the other keeps ids cluster-wide (Redis issues them) and comparable by
 * every client and by the MemoryEngine alike.
 */

const TIME_WIDTH = 9;
const SEQ_WIDTH = 4;
const ID_LENGTH = TIME_WIDTH + SEQ_WIDTH;
const DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * `1700000000000-5` → `00lp0ljb40005`. Redis numbers entries within one millisecond of one stream
 * from 0; 36^4 (1.6 million) of them in one millisecond is beyond what one Redis can write.
 */
export function heraldIdOf(streamId: string): string {
  const dash = streamId.indexOf('-');
  const ms = Number(streamId.slice(0, dash));
  const seq = Number(streamId.slice(dash + 1));
  return ms.toString(36).padStart(TIME_WIDTH, '0') + seq.toString(36).padStart(SEQ_WIDTH, '0');
}

/** Milliseconds of a stream id: when Redis accepted the entry. */
export function timeOf(streamId: string): number {
  return Number(streamId.slice(0, streamId.indexOf('-')));
}

/** Milliseconds of a well-formed Herald id. */
export function msOf(heraldId: string): number {
  return parseInt(heraldId.slice(0, TIME_WIDTH), 36);
}

/** The stream id of a well-formed Herald id. */
export function streamIdOf(heraldId: string): string {
  return `${parseInt(heraldId.slice(0, TIME_WIDTH), 36)}-${parseInt(heraldId.slice(TIME_WIDTH), 36)}`;
}

/**
 * The XRANGE start that selects exactly the entries whose Herald id sorts after `since` as a
 * string, whatever `since` is (a client may send any text): `(id` (exclusive) or `id` (inclusive),
 * or undefined when no Herald id can sort after it.
 */
export function rangeStartAfter(since: string): string | undefined {
  const chars: number[] = [];
  for (let i = 0; i < ID_LENGTH; i++) {
    if (i === since.length) return streamIdOf(since + '0'.repeat(ID_LENGTH - i));
    const char = since[i]!;
    const digit = DIGITS.indexOf(char);
    if (digit >= 0) {
      chars.push(digit);
      continue;
    }
    // Not a base36 digit: the smallest id above is the prefix followed by the next digit up.
    const prefix = chars.map((d) => DIGITS[d]).join('');
    if (char < '0') return streamIdOf(prefix + '0'.repeat(ID_LENGTH - i));
    if (char < 'a' && char > '9') return streamIdOf(prefix + 'a' + '0'.repeat(ID_LENGTH - i - 1));
    // Above 'z': every id with this prefix sorts below; carry into the prefix.
    let j = chars.length - 1;
    while (j >= 0 && chars[j] === 35) j--;
    if (j < 0) return undefined;
    chars[j] = chars[j]! + 1;
    return streamIdOf(chars.slice(0, j + 1).map((d) => DIGITS[d]).join('').padEnd(ID_LENGTH, '0'));
  }
  // A longer `since` sorts after its 13-character prefix, and so does every id above that prefix.
  return `(${streamIdOf(since.slice(0, ID_LENGTH))}`;
}

/** The Herald id one below the given stream id's millisecond: smaller than every id Redis gives from then on. */
export function idBefore(ms: number): string {
  return heraldIdOf(`${Math.max(0, ms - 1)}-0`);
}
