/**
 * @module
 * The outbox in Redis (core/outbox.ts), so that events outlive the node that saw them:
 * - `<prefix>outbox:<name>`: a stream, trimmed to its length (exact MAXLEN), each entry with its
 *   seq (`n`, from the counter `…:seq`) and the event (`e`). OUTBOX_ADD claims and appends in one
 *   step: a claimed event is always stored, and an event seen by every node is stored once.
 * - `…:lease`: the node that sends (SET PX, renewed by its holder; a holder that dies lets it lapse).
 * - `…:cursor:<reader>`: `"<stream id> <seq>"` of the last entry the reader took; moved only by
 *   the lease holder (OUTBOX_ACK checks it in the same step), and only forward (by stream id).
 * A Redis that lost its data lost all of it together: readers then start from the new stream.
 * A cursor written into a Redis that lost its data (a batch sent before, acknowledged after) or
 * otherwise beyond the stream is dropped and the reader starts over, said by `reset`.
 */
import type { Redis } from 'ioredis';
import { randomId } from '../../core/ids.js';
import { skippedBefore } from '../../core/outbox.js';
import { LATER } from './scripts.js';
import type { Outbox, OutboxClaim, OutboxEntry, OutboxRead } from '../../core/outbox.js';

/** KEYS[1] claim key, KEYS[2] stream, KEYS[3] seq · ARGV holder, claim ms (0 = no claim), max length, event. */
const OUTBOX_ADD = `
if tonumber(ARGV[2]) > 0 and not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 0 end
local n = redis.call('INCR', KEYS[3])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], '*', 'n', n, 'e', ARGV[4])
return 1
`;

/**
 * KEYS[1] stream, KEYS[2] cursor, KEYS[3] seq · ARGV count → { reset 0|1, cursor seq or -1, entries }.
 * A cursor beyond the stream (its seq above the counter, its id after the newest entry, or no
 * stream at all: trimming always keeps the newest) outlived the data it pointed into.
 */
const OUTBOX_READ = `${LATER}
local cursor = redis.call('GET', KEYS[2])
local from, seq, reset = '-', -1, 0
if cursor then
  local id, n = string.match(cursor, '^(%S+) (%d+)$')
  local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if tonumber(n) > tonumber(redis.call('GET', KEYS[3]) or '0') or #newest == 0 or later(id, newest[1][1]) then
    redis.call('DEL', KEYS[2])
    reset = 1
  else
    from, seq = '(' .. id, tonumber(n)
  end
end
return { reset, seq, redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', ARGV[1]) }
`;

/** KEYS[1] lease · ARGV holder, ms → 1 when held (taken or renewed). */
const OUTBOX_LEASE = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

/** KEYS[1] lease · ARGV holder. */
const OUTBOX_RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

/** KEYS[1] lease, KEYS[2] cursor · ARGV holder, stream id, seq → 0 when the lease is not the holder's. */
const OUTBOX_ACK = `${LATER}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local cursor = redis.call('GET', KEYS[2])
if cursor and not later(ARGV[2], string.match(cursor, '^(%S+) ')) then return 1 end
redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[3])
return 1
`;

export interface RedisOutboxOptions {
  readonly keyPrefix: string;
  readonly name: string;
  readonly maxLength: number;
  /** Runs a command the way the engine does (refused while Redis is unreachable, failures as HERALD_ERR_ENGINE_UNAVAILABLE). */
  readonly run: <T>(what: string, operation: () => Promise<T>) => Promise<T>;
}

type RawEntry = [string, string[]];

export class RedisOutbox implements Outbox {
  readonly #stream: string;
  /** Who holds the lease: this outbox, not the node (two outboxes of one node are two holders). */
  readonly #holder = randomId();

  constructor(
    private readonly commands: Redis,
    private readonly options: RedisOutboxOptions,
  ) {
    this.#stream = `${options.keyPrefix}outbox:${options.name}`;
    commands.defineCommand('heraldOutboxAdd', { numberOfKeys: 3, lua: OUTBOX_ADD });
    commands.defineCommand('heraldOutboxRead', { numberOfKeys: 3, lua: OUTBOX_READ });
    commands.defineCommand('heraldOutboxLease', { numberOfKeys: 1, lua: OUTBOX_LEASE });
    commands.defineCommand('heraldOutboxRelease', { numberOfKeys: 1, lua: OUTBOX_RELEASE });
    commands.defineCommand('heraldOutboxAck', { numberOfKeys: 2, lua: OUTBOX_ACK });
  }

  async add(event: string, claim?: OutboxClaim): Promise<boolean> {
    const claimKey = claim === undefined ? this.#stream : `${this.options.keyPrefix}claim:${claim.key}`;
    const claimMs = claim === undefined ? 0 : Math.max(1, Math.ceil(claim.ttlMs));
    return (await this.#call('add to the outbox', 'heraldOutboxAdd', claimKey, this.#stream, this.#seq, this.#holder, claimMs, this.options.maxLength, event)) === 1;
  }

  async lease(ttlMs: number): Promise<boolean> {
    return (await this.#call('take the outbox lease', 'heraldOutboxLease', this.#lease, this.#holder, Math.max(1, Math.ceil(ttlMs)))) === 1;
  }

  async release(): Promise<void> {
    await this.#call('release the outbox lease', 'heraldOutboxRelease', this.#lease, this.#holder);
  }

  async read(reader: string, count: number): Promise<OutboxRead> {
    const [reset, seq, raw] = (await this.#call('read the outbox', 'heraldOutboxRead', this.#stream, this.#cursor(reader), this.#seq, count)) as [number, number, RawEntry[]];
    const entries = raw.map(([id, fields]): OutboxEntry => ({ id, seq: Number(field(fields, 'n')), event: field(fields, 'e') ?? 'null' }));
    return { entries, skipped: skippedBefore(seq < 0 ? undefined : seq, entries[0]), reset: reset === 1 };
  }

  async ack(reader: string, entry: OutboxEntry): Promise<boolean> {
    return (await this.#call('move an outbox cursor', 'heraldOutboxAck', this.#lease, this.#cursor(reader), this.#holder, entry.id, entry.seq)) === 1;
  }

  get #seq(): string {
    return `${this.#stream}:seq`;
  }

  get #lease(): string {
    return `${this.#stream}:lease`;
  }

  #cursor(reader: string): string {
    return `${this.#stream}:cursor:${reader}`;
  }

  #call(what: string, command: string, ...args: (string | number)[]): Promise<unknown> {
    return this.options.run(what, () => (this.commands as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[command]!(...args));
  }
}

function field(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
