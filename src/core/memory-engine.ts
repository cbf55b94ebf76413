/**
 * @module
 * The embedded engine: one process, no network. History is a bounded list per channel.
 */
import { expandChannel } from './channel.js';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { Engine, EngineHealth, GapListener, HistoryPage, HistoryQuery, MessageListener, PresenceMember, PublishRequest } from './engine.js';
import { HeraldError } from './errors.js';
import { MessageIdGenerator, randomId } from './ids.js';
import type { Message } from './message.js';

export interface MemoryEngineOptions {
  /** Messages kept per channel for resumption; 0 keeps none. */
  historySize?: number;
  /** Messages older than this are dropped from history; 0 = no age limit. */
  historyTtlMs?: number;
  /** Channels with history at once; past it the least recently written channel's history goes. */
  historyMaxChannels?: number;
  /** The name presence gives this node (default: random). */
  nodeId?: string;
  clock?: Clock;
}

export const MEMORY_ENGINE_DEFAULTS = { historySize: 0, historyTtlMs: 0, historyMaxChannels: 100_000 } as const;

interface ChannelHistory {
  messages: Message[];
  /** Id of the newest message that history no longer holds: readers asking from before it have a gap. */
  evictedThrough: string | undefined;
}

export class MemoryEngine implements Engine {
  readonly #historySize: number;
  readonly #historyTtlMs: number;
  readonly #historyMaxChannels: number;
  /** Ids before this one were issued before this engine started: nothing can prove they are covered. */
  readonly #floor: string;
  /**
   * The newest id of any channel history forgotten whole (emptied by TTL, dropped by the channel
   * cap, deleted): a channel with nothing kept may have held messages up to it, so readers from
   * before it get a gap, and readers from after it (a position given since) are told they missed
   * nothing. One id for all channels: bounded, and never too optimistic.
   */
  #forgottenThrough: string;
  readonly #clock: Clock;
  readonly #ids: MessageIdGenerator;
  readonly #patterns = new Map<string, number>();
  readonly #history = new Map<string, ChannelHistory>();
  readonly #presence = new Map<string, Map<string, PresenceMember>>();
  readonly #nodeId: string;
  #listener: MessageListener | undefined;
  #closed = false;

  constructor(options: MemoryEngineOptions = {}) {
    this.#historySize = options.historySize ?? MEMORY_ENGINE_DEFAULTS.historySize;
    this.#historyTtlMs = options.historyTtlMs ?? MEMORY_ENGINE_DEFAULTS.historyTtlMs;
    if (!Number.isInteger(this.#historySize) || this.#historySize < 0) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `historySize must be a non-negative integer, got ${this.#historySize}`);
    }
    this.#clock = options.clock ?? systemClock;
    this.#ids = new MessageIdGenerator(() => this.#clock.now());
    this.#historyMaxChannels = options.historyMaxChannels ?? MEMORY_ENGINE_DEFAULTS.historyMaxChannels;
    this.#floor = this.#ids.next();
    this.#forgottenThrough = this.#floor;
    this.#nodeId = options.nodeId ?? randomId().slice(0, 12);
  }

  async publish(request: PublishRequest): Promise<Message> {
    if (this.#closed) throw new HeraldError('HERALD_ERR_CLOSED', 'the engine is closed');
    const message: Message = {
      id: this.#ids.next(),
      channel: request.channel,
      data: request.data,
      publishedAt: this.#clock.now(),
    };
    this.#remember(message);
    if (this.#listener !== undefined && this.#hasInterest(message.channel)) this.#listener(message);
    return message;
  }

  async subscribe(pattern: string): Promise<void> {
    this.#patterns.set(pattern, (this.#patterns.get(pattern) ?? 0) + 1);
  }

  async unsubscribe(pattern: string): Promise<void> {
    const count = this.#patterns.get(pattern);
    if (count === undefined) return;
    if (count <= 1) this.#patterns.delete(pattern);
    else this.#patterns.set(pattern, count - 1);
  }

  async history(channel: string, query: HistoryQuery = {}): Promise<HistoryPage> {
    const { since, limit = Infinity } = query;
    const entry = this.#history.get(channel);
    if (entry !== undefined) this.#expire(channel, entry);
    // With nothing kept for the channel, a reader asking from an id cannot be told it missed nothing.
    if (entry === undefined || entry.messages.length === 0) return { messages: [], gap: since !== undefined && since < this.#forgottenThrough };
    let start = 0;
    if (since !== undefined) {
      while (start < entry.messages.length && entry.messages[start]!.id <= since) start++;
    }
    const gap = since !== undefined && ((entry.evictedThrough !== undefined && since < entry.evictedThrough) || since < this.#floor);
    return { messages: entry.messages.slice(start, start + limit), gap };
  }

  async position(channel: string): Promise<string> {
    const messages = this.#history.get(channel)?.messages;
    return messages?.[messages.length - 1]?.id ?? this.#ids.next();
  }

  async deleteHistory(channel: string): Promise<void> {
    this.#history.delete(channel);
    this.#forgot(this.#ids.next());
  }

  async join(channel: string, member: string): Promise<void> {
    let members = this.#presence.get(channel);
    if (members === undefined) this.#presence.set(channel, (members = new Map()));
    if (!members.has(member)) members.set(member, { id: member, node: this.#nodeId, joinedAt: this.#clock.now() });
  }

  async leave(channel: string, member: string): Promise<void> {
    const members = this.#presence.get(channel);
    if (members?.delete(member) === true && members.size === 0) this.#presence.delete(channel);
  }

  async presence(channel: string): Promise<readonly PresenceMember[]> {
    return [...(this.#presence.get(channel)?.values() ?? [])];
  }

  health(): EngineHealth {
    return this.#closed ? { healthy: false, detail: 'closed' } : { healthy: true };
  }

  onMessage(listener: MessageListener): void {
    this.#listener = listener;
  }

  /** Every message reaches the listener in the publish itself: there is never a gap to report. */
  onGap(_listener: GapListener): void {}

  async close(): Promise<void> {
    this.#closed = true;
    this.#listener = undefined;
    this.#history.clear();
    this.#patterns.clear();
    this.#presence.clear();
  }

  #hasInterest(channel: string): boolean {
    if (this.#patterns.size === 0) return false;
    for (const pattern of expandChannel(channel)) if (this.#patterns.has(pattern)) return true;
    return false;
  }

  historyCounts(): { channels: number; messages: number } {
    let messages = 0;
    for (const entry of this.#history.values()) messages += entry.messages.length;
    return { channels: this.#history.size, messages };
  }

  #remember(message: Message): void {
    if (this.#historySize === 0) return;
    let entry = this.#history.get(message.channel);
    if (entry === undefined) {
      // A channel forgotten before may have held messages up to there: a reader from before has a gap.
      entry = { messages: [], evictedThrough: this.#forgottenThrough };
    } else {
      // Re-inserting keeps the map in order of last write, oldest first, for the channel cap.
      this.#history.delete(message.channel);
    }
    this.#history.set(message.channel, entry);
    entry.messages.push(message);
    if (entry.messages.length > this.#historySize) {
      entry.evictedThrough = entry.messages.shift()!.id;
    }
    this.#expire(message.channel, entry);
    if (this.#history.size > this.#historyMaxChannels) {
      const [oldest, dropped] = this.#history.entries().next().value!;
      this.#history.delete(oldest);
      this.#forgot(dropped.messages[dropped.messages.length - 1]?.id ?? dropped.evictedThrough);
    }
  }

  #expire(channel: string, entry: ChannelHistory): void {
    if (this.#historyTtlMs === 0) return;
    const oldestKept = this.#clock.now() - this.#historyTtlMs;
    let drop = 0;
    while (drop < entry.messages.length && entry.messages[drop]!.publishedAt < oldestKept) drop++;
    if (drop > 0) entry.evictedThrough = entry.messages.splice(0, drop)[drop - 1]!.id;
    // Forgetting an emptied channel loses nothing: readers from an id then get a gap.
    if (entry.messages.length === 0) {
      this.#history.delete(channel);
      this.#forgot(entry.evictedThrough);
    }
  }

  #forgot(through: string | undefined): void {
    if (through !== undefined && through > this.#forgottenThrough) this.#forgottenThrough = through;
  }
}
