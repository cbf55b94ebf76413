/**
 * @module
 * Ids and history across the cluster: one Redis stream per channel (`<prefix>h:<channel>`). A Lua
 * script appends (XADD, trimmed to the history size and age) and publishes in one atomic step, so
 * Redis issues every id and every node sees one channel's messages in id order.
 *
 * The floor (`<prefix>floor`) and the epoch (`<prefix>epoch`, FLOOR_SCRIPT) tell the life of the
 * Redis data set: ids below the floor were issued before it began, so their history is gone, and a
 * new epoch means Redis lost its data. A node reads both on every (re)connect (redis-engine.ts).
 */
import type { Redis } from 'ioredis';
import type { HistoryPage, HistoryQuery, Published, PublishRequest } from '../../core/engine.js';
import { isFutureId, randomId } from '../../core/ids.js';
import type { Message } from '../../core/message.js';
import { DELETE_HISTORY_SCRIPT, FLOOR_SCRIPT, HISTORY_SCRIPT, POSITION_SCRIPT, PUBLISH_SCRIPT } from './scripts.js';
import { heraldIdOf, idBefore, msOf, rangeStartAfter, timeOf } from './stream-ids.js';

export interface RedisStreamsOptions {
  readonly keyPrefix: string;
  /** Prefix of the pub/sub channel a publish goes out on (the subscriptions' too). */
  readonly channelPrefix: string;
  readonly historySize: number;
  readonly historyTtlMs: number;
  /** Runs a Redis operation, or refuses it while Redis is out of reach (the engine's). */
  readonly run: <T>(what: string, operation: () => Promise<T>) => Promise<T>;
}

/** Without history, a stream only carries the channel's last id: it may go when the channel is quiet. */
const ID_ONLY_STREAM_EXPIRY_MS = 3_600_000;

interface RawEntry extends Array<unknown> {
  0: string;
  1: string[];
}

export class RedisStreams {
  /**
   * Ids below this were issued before the Redis data set began: their history is gone. Unset
   * until the node has read it after (re)connecting: it cannot tell meanwhile whether Redis lost
   * its data, so the engine refuses operations.
   */
  floor: string | undefined;
  /** The life of the Redis data set the node knows (FLOOR_SCRIPT): when it changes, Redis lost its data. */
  #epoch: string | undefined;
  /** The newest id the node has seen (issued, delivered, read): a Redis that lost its data must go above it. */
  #newest = '';

  constructor(
    private readonly commands: Redis,
    private readonly options: RedisStreamsOptions,
  ) {
    commands.defineCommand('heraldPublish', { numberOfKeys: 3, lua: PUBLISH_SCRIPT });
    commands.defineCommand('heraldHistory', { numberOfKeys: 1, lua: HISTORY_SCRIPT });
    commands.defineCommand('heraldPosition', { numberOfKeys: 1, lua: POSITION_SCRIPT });
    commands.defineCommand('heraldFloor', { numberOfKeys: 2, lua: FLOOR_SCRIPT });
    commands.defineCommand('heraldDeleteHistory', { numberOfKeys: 1, lua: DELETE_HISTORY_SCRIPT });
  }

  /** Appends and publishes; a duplicate (its idempotency key used) is the first publish's id and channel. */
  async publish(request: PublishRequest): Promise<Published> {
    // `undefined` has no JSON form; every subscriber would read it back as null anyway.
    const data = request.json ?? JSON.stringify(request.data) ?? 'null';
    const { keyPrefix, channelPrefix, historySize, historyTtlMs } = this.options;
    const expiry = this.#streamExpiryMs();
    const { key = '', windowMs = 0 } = request.idempotency ?? {};
    const result = (await this.options.run('publish', () =>
      this.#call('heraldPublish', this.#streamKey(request.channel), this.#floorKey, `${keyPrefix}idem:${key}`, channelPrefix + request.channel, data, historySize, historyTtlMs, expiry, windowMs, request.channel),
    )) as string | [string];
    if (Array.isArray(result)) {
      // The key was used: the first publish's id and channel, nothing stored, nothing to wait for.
      const [firstId, channel] = splitOnce(result[0]);
      return { id: heraldIdOf(firstId), channel, data: request.data, publishedAt: timeOf(firstId), duplicate: true };
    }
    const streamId = result;
    return { id: this.saw(heraldIdOf(streamId)), channel: request.channel, data: request.data, publishedAt: timeOf(streamId), size: data.length };
  }

  async history(channel: string, query: HistoryQuery = {}): Promise<HistoryPage> {
    const { since, limit } = query;
    const start = since === undefined ? '-' : rangeStartAfter(since);
    // Nothing sorts after it: a cursor no engine gave (core/ids.ts isFutureId).
    if (start === undefined) return { messages: [], gap: true };
    const count = limit === undefined || !Number.isFinite(limit) ? 0 : Math.max(0, Math.floor(limit));
    if (limit !== undefined && count === 0) return { messages: [], gap: false };
    const result = (await this.options.run('history', () => this.#call('heraldHistory', this.#streamKey(channel), start, count, this.options.historyTtlMs))) as
      | [string, RawEntry[], string, string]
      | [string];
    if (result.length === 1) {
      // No stream: never published since the data set began (the floor), or quiet long enough for
      // its key to expire — a reader from before that may have missed what it held.
      const expiry = this.#streamExpiryMs();
      const now = Number(result[0]);
      const gap = since !== undefined && (since < this.floor! || (expiry > 0 && since < idBefore(now - expiry)) || isFutureId(since, this.#issuedUpTo(now)));
      return { messages: [], gap };
    }
    const [maxDeleted, entries, lastGenerated, now] = result;
    const messages = entries.map((entry) => this.#fromEntry(channel, entry));
    if (messages.length > 0) this.saw(messages[messages.length - 1]!.id);
    // A cursor after every id Redis could have given (its clock, or the stream's last id if that is ahead).
    const future = since !== undefined && since > heraldIdOf(lastGenerated) && isFutureId(since, this.#issuedUpTo(Number(now)));
    const gap = since !== undefined && ((maxDeleted !== '0-0' && since < heraldIdOf(maxDeleted)) || since < this.floor! || future);
    return { messages, gap };
  }

  async position(channel: string): Promise<string> {
    const [kind, value] = (await this.options.run('position', () => this.#call('heraldPosition', this.#streamKey(channel)))) as [string, string];
    const id = kind === 'id' ? heraldIdOf(value) : idBefore(Number(value));
    // Redis's clock may be behind the floor (it lost its data): a point below the floor would be a
    // gap to whoever resumes from it, every time, until the channel has a message.
    const floor = this.floor;
    return this.saw(floor !== undefined && id < floor ? floor : id);
  }

  async deleteHistory(channel: string): Promise<void> {
    await this.options.run('delete history', () => this.#call('heraldDeleteHistory', this.#streamKey(channel)));
  }

  /**
   * Reads the floor and the epoch of the data set Redis holds now (raising the floor above the
   * newest id this node saw, should Redis have lost its data). Not through `run`: it is what makes
   * the node ready to run anything.
   */
  async readFloor(): Promise<{ floor: string; lostData: boolean }> {
    const newestMs = this.#newest === '' ? 0 : msOf(this.#newest);
    const [floorMs, epoch] = (await this.#call('heraldFloor', this.#floorKey, `${this.options.keyPrefix}epoch`, this.#epoch ?? '', newestMs, randomId())) as [string, string];
    const lostData = this.#epoch !== undefined && epoch !== this.#epoch;
    this.#epoch = epoch;
    return { floor: idBefore(Number(floorMs)), lostData };
  }

  /** Notes an id the node has seen (see #newest); returns it. */
  saw(id: string): string {
    if (id > this.#newest) this.#newest = id;
    return id;
  }

  /** The newest moment an id may have been issued for: Redis's clock, or the floor when the clock is behind it. */
  #issuedUpTo(redisNowMs: number): number {
    return Math.max(redisNowMs, msOf(this.floor!) + 1);
  }

  /**
   * How long a quiet stream's key lives: it may go once all it holds has aged out; twice the TTL
   * spares the readers of a briefly quiet channel a gap they did not have (see PUBLISH_SCRIPT).
   */
  #streamExpiryMs(): number {
    const { historySize, historyTtlMs } = this.options;
    return historyTtlMs > 0 ? 2 * historyTtlMs : historySize === 0 ? ID_ONLY_STREAM_EXPIRY_MS : 0;
  }

  #fromEntry(channel: string, [streamId, fields]: RawEntry): Message {
    return { id: heraldIdOf(streamId), channel, data: JSON.parse(fields[1]!), publishedAt: timeOf(streamId), size: fields[1]!.length };
  }

  get #floorKey(): string {
    return `${this.options.keyPrefix}floor`;
  }

  #streamKey(channel: string): string {
    return `${this.options.keyPrefix}h:${channel}`;
  }

  #call(command: string, ...args: (string | number)[]): Promise<unknown> {
    return (this.commands as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[command]!(...args);
  }
}

/** `"<stream id> <channel>"` → its two parts (a channel name may hold spaces; an id never does). */
function splitOnce(text: string): [string, string] {
  const space = text.indexOf(' ');
  return [text.slice(0, space), text.slice(space + 1)];
}
