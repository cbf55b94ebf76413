/**
 * @module
 * The embedded engine: one process, no network. History is a bounded list per channel.
 */
import { expandChannel } from './channel.js';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { Engine, HistoryPage, HistoryQuery, MessageListener, PublishRequest } from './engine.js';
import { HeraldError } from './errors.js';
import { MessageIdGenerator } from './ids.js';
import type { Message } from './message.js';

export interface MemoryEngineOptions {
  /** Messages kept per channel for resumption; 0 keeps none. */
  historySize?: number;
  /** Messages older than this are dropped from history; 0 = no age limit. */
  historyTtlMs?: number;
  clock?: Clock;
}

export const MEMORY_ENGINE_DEFAULTS = { historySize: 0, historyTtlMs: 0 } as const;

interface ChannelHistory {
  messages: Message[];
  /** Id of the newest message that history no longer holds: readers asking from before it have a gap. */
  evictedThrough: string | undefined;
}

export class MemoryEngine implements Engine {
  readonly #historySize: number;
  readonly #historyTtlMs: number;
  readonly #clock: Clock;
  readonly #ids: MessageIdGenerator;
  readonly #patterns = new Map<string, number>();
  readonly #history = new Map<string, ChannelHistory>();
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
    const entry = this.#history.get(channel);
    if (entry === undefined) return { messages: [], gap: false };
    this.#expire(entry);
    const { since, limit = Infinity } = query;
    let start = 0;
    if (since !== undefined) {
      while (start < entry.messages.length && entry.messages[start]!.id <= since) start++;
    }
    const gap = since !== undefined && entry.evictedThrough !== undefined && since < entry.evictedThrough;
    return { messages: entry.messages.slice(start, start + limit), gap };
  }

  async deleteHistory(channel: string): Promise<void> {
    const entry = this.#history.get(channel);
    if (entry === undefined || entry.messages.length === 0) return;
    entry.evictedThrough = entry.messages[entry.messages.length - 1]!.id;
    entry.messages = [];
  }

  onMessage(listener: MessageListener): void {
    this.#listener = listener;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listener = undefined;
    this.#history.clear();
    this.#patterns.clear();
  }

  #hasInterest(channel: string): boolean {
    if (this.#patterns.size === 0) return false;
    for (const pattern of expandChannel(channel)) if (this.#patterns.has(pattern)) return true;
    return false;
  }

  #remember(message: Message): void {
    if (this.#historySize === 0) return;
    let entry = this.#history.get(message.channel);
    if (entry === undefined) {
      entry = { messages: [], evictedThrough: undefined };
      this.#history.set(message.channel, entry);
    }
    entry.messages.push(message);
    if (entry.messages.length > this.#historySize) {
      entry.evictedThrough = entry.messages.shift()!.id;
    }
    this.#expire(entry);
  }

  #expire(entry: ChannelHistory): void {
    if (this.#historyTtlMs === 0) return;
    const oldestKept = this.#clock.now() - this.#historyTtlMs;
    let drop = 0;
    while (drop < entry.messages.length && entry.messages[drop]!.publishedAt < oldestKept) drop++;
    if (drop > 0) entry.evictedThrough = entry.messages.splice(0, drop)[drop - 1]!.id;
  }
}
