/**
 * @module
 * The embedded engine: one process, no network. History is a bounded list per channel.
 */
import { expandChannel } from './channel.js';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { ControlCommand, Revocation } from './control.js';
import type { ControlListener, Engine, EngineHealth, GapListener, HistoryPage, HistoryQuery, Inquiry, InquiryAnswers, InquiryResponder, MessageListener, PresenceEntry, PresenceJoin, PresenceListener, Published, PublishRequest, UserSweep } from './engine.js';
import { HeraldError } from './errors.js';
import { HISTORY_DEFAULTS } from './history-defaults.js';
import { IdempotencyKeys } from './idempotency.js';
import { MessageIdGenerator, randomId } from './ids.js';
import { MESSAGE_OVERHEAD_BYTES } from './memory-budget.js';
import type { MemoryBudget } from './memory-budget.js';
import type { Message } from './message.js';
import { serialisedSize } from './message.js';
import { UserRecords } from './user-records.js';
import { MemoryOutbox, MemoryOutboxStore } from './memory-outbox.js';
import type { Outbox } from './outbox.js';

export interface MemoryEngineOptions {
  /** Messages kept per channel for resumption; 0 keeps none. */
  historySize?: number;
  /** Messages older than this are dropped from history; 0 = no age limit. */
  historyTtlMs?: number;
  /** Channels with history at once; past it the least recently written channel's history goes. */
  historyMaxChannels?: number;
  /**
   * Channels whose history was forgotten whole, remembered by where it ended (a tombstone) so a
   * reader resuming from before is told of the gap; past this many, the oldest fold into one
   * floor for every channel (readers from before it get a gap, on any channel).
   */
  maxTombstones?: number;
  /** Shared with the sessions: when it is exceeded, history forgets its least recently written channels. */
  memoryBudget?: MemoryBudget;
  /** The name presence gives this node (default: random). */
  nodeId?: string;
  /** Idempotency keys kept at most; past it the oldest are forgotten before their window ends (counted). */
  idempotencyMaxKeys?: number;
  clock?: Clock;
}

export const MEMORY_ENGINE_DEFAULTS = { ...HISTORY_DEFAULTS, historyMaxChannels: 100_000, maxTombstones: 100_000 } as const;

interface ChannelHistory {
  messages: Message[];
  /** Id of the newest message that history no longer holds: readers asking from before it have a gap. */
  evictedThrough: string | undefined;
  /** What `messages` cost, as the memory budget counts it. */
  bytes: number;
}

/** What a tombstone costs: its map entry, the channel name and an id. */
const tombstoneBytes = (channel: string): number => channel.length + 64;
const messageBytes = (message: Message): number => (message.size ?? 0) + MESSAGE_OVERHEAD_BYTES;

/**
 * A resume must never skip a message silently (issue 14): for every channel the engine knows the
 * newest id it forgot — the kept history's `evictedThrough`, or the tombstone of a channel it
 * dropped whole (expired, evicted for the channel cap or the memory budget, deleted) — and below
 * all of them a floor: ids issued before the engine started, or by channels whose tombstones were
 * folded away. A reader from an id below that mark has a gap. A channel that never had a message
 * has no mark, so readers of it get no false gap.
 */
export class MemoryEngine implements Engine {
  readonly #historySize: number;
  readonly #historyTtlMs: number;
  readonly #historyMaxChannels: number;
  readonly #maxTombstones: number;
  readonly #budget: MemoryBudget | undefined;
  /** Readers from before this id have a gap on every channel (see the class comment). */
  #floor: string;
  readonly #clock: Clock;
  readonly #ids: MessageIdGenerator;
  /** Outboxes by name: every handle on a name shares one (webhooks of servers sharing this engine). */
  readonly #outboxes = new Map<string, MemoryOutboxStore>();
  readonly #patterns = new Map<string, number>();
  /** In order of last write, oldest first (for the channel cap and the memory budget). */
  readonly #history = new Map<string, ChannelHistory>();
  /** The channel #remember wrote last, so last in #history's order already: a burst on it moves nothing. */
  #lastWritten: string | undefined;
  /** Channel → the newest id forgotten with its whole history; oldest tombstone first. */
  readonly #tombstones = new Map<string, string>();
  /** What history and tombstones cost, as the memory budget counts it. */
  #bytes = 0;
  /**
   * Per channel, who is present and since when (ms): for an anonymous session (its user is its
   * public id) without info only the time, else what it shows too; entries are made only when asked for (presence).
   */
  readonly #presence = new Map<string, Map<string, number | { readonly user: string; readonly anonymous?: true; readonly info?: unknown; readonly joinedAt: number }>>();
  #presenceListener: PresenceListener | undefined;
  /** Who is online (user tracking): one node, so the process's own record. */
  readonly #users = new UserRecords();
  readonly #nodeId: string;
  /** Idempotency keys of this node's publishes (one node: nothing to share). */
  readonly #idempotencyKeys: IdempotencyKeys;
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
    this.#maxTombstones = Math.max(1, options.maxTombstones ?? MEMORY_ENGINE_DEFAULTS.maxTombstones);
    this.#floor = this.#ids.next();
    this.#nodeId = options.nodeId ?? randomId().slice(0, 12);
    this.#budget = options.memoryBudget;
    this.#idempotencyKeys = new IdempotencyKeys(options.idempotencyMaxKeys);
    this.#budget?.reclaimWith('history', (bytes) => this.#reclaim(bytes));
  }

  async publish(request: PublishRequest): Promise<Published> {
    if (this.#closed) throw new HeraldError('HERALD_ERR_CLOSED', 'the engine is closed');
    const idempotency = request.idempotency;
    // Found and recorded in the same turn as the message is stored: two publishes with one key cannot both pass.
    const first = idempotency === undefined ? undefined : this.#idempotencyKeys.find(idempotency.key, this.#clock.now());
    if (first !== undefined) return { ...first, data: request.data, duplicate: true };
    const message: Message = {
      id: this.#ids.next(),
      channel: request.channel,
      data: request.data,
      publishedAt: this.#clock.now(),
      size: request.size ?? serialisedSize(request.data) ?? 0,
    };
    this.#remember(message);
    if (idempotency !== undefined) {
      // Not the message itself: its data would be held for the whole window.
      this.#idempotencyKeys.remember(idempotency.key, { id: message.id, channel: message.channel, publishedAt: message.publishedAt }, message.publishedAt, idempotency.windowMs);
    }
    if (this.#listener !== undefined && this.#hasInterest(message.channel)) this.#listener(message, request.json);
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
    const messages = entry === undefined ? [] : this.#expire(channel, entry);
    let start = 0;
    if (since !== undefined) {
      while (start < messages.length && messages[start]!.id <= since) start++;
    }
    const gap = since !== undefined && (since < this.#forgottenThrough(channel) || this.#ids.isFuture(since));
    return { messages: messages.slice(start, start + limit), gap };
  }

  async position(channel: string): Promise<string> {
    const messages = this.#history.get(channel)?.messages;
    return messages?.[messages.length - 1]?.id ?? this.#ids.next();
  }

  outbox(name: string, maxLength: number): Outbox {
    let store = this.#outboxes.get(name);
    if (store === undefined) this.#outboxes.set(name, (store = new MemoryOutboxStore()));
    return new MemoryOutbox(store, this.#clock, maxLength);
  }

  async userConnected(user: string): Promise<boolean> {
    return this.#users.connected(user);
  }

  async userDisconnected(user: string): Promise<boolean> {
    return this.#users.disconnected(user, this.#clock.now());
  }

  /** One node: none dies while the others live. */
  async sweepUsers(graceMs: number): Promise<UserSweep> {
    return { offline: this.#users.sweep(this.#clock.now(), graceMs), online: [] };
  }

  async deleteHistory(channel: string): Promise<void> {
    const entry = this.#history.get(channel);
    if (entry !== undefined) {
      this.#history.delete(channel);
      this.#charge(-entry.bytes);
    }
    // The channel is reset: whoever read it before now has a gap, even if nothing was published since.
    this.#bury(channel, this.#ids.next());
  }

  async join(channel: string, entry: PresenceJoin): Promise<void> {
    let entries = this.#presence.get(channel);
    if (entries === undefined) this.#presence.set(channel, (entries = new Map()));
    if (entries.has(entry.session)) return;
    const joinedAt = this.#clock.now();
    const anonymous = entry.anonymous === true && entry.user === entry.session;
    const info = entry.info === undefined ? {} : { info: entry.info };
    entries.set(entry.session, anonymous && entry.info === undefined ? joinedAt : { user: entry.user, ...(anonymous ? { anonymous } : {}), ...info, joinedAt });
    this.#presenceListener?.(channel);
  }

  async leave(channel: string, session: string): Promise<void> {
    const entries = this.#presence.get(channel);
    if (entries?.delete(session) !== true) return;
    if (entries.size === 0) this.#presence.delete(channel);
    this.#presenceListener?.(channel);
  }

  async presence(channel: string): Promise<readonly PresenceEntry[]> {
    const node = this.#nodeId;
    return [...(this.#presence.get(channel) ?? [])].map(([session, kept]): PresenceEntry =>
      typeof kept === 'number' ? { session, user: session, anonymous: true, node, joinedAt: kept } : { session, ...kept, node },
    );
  }

  onPresence(listener: PresenceListener): void {
    this.#presenceListener = listener;
  }

  health(): EngineHealth {
    return this.#closed ? { healthy: false, detail: 'closed' } : { healthy: true };
  }

  onMessage(listener: MessageListener): void {
    this.#listener = listener;
  }

  /** Every message reaches the listener in the publish itself: there is never a gap to report. */
  onGap(_listener: GapListener): void {}

  /** One node: there is no other to tell. */
  async broadcast(_command: ControlCommand): Promise<void> {
    if (this.#closed) throw new HeraldError('HERALD_ERR_CLOSED', 'the engine is closed');
  }

  /** Kept by this node's control plane only (which merges it), for the life of the process. */
  async revoke(revocation: Revocation): Promise<Revocation> {
    if (this.#closed) throw new HeraldError('HERALD_ERR_CLOSED', 'the engine is closed');
    return revocation;
  }

  /** No other node sends commands, and nothing is kept to replay. */
  onControl(_listener: ControlListener): void {}

  get nodeId(): string {
    return this.#nodeId;
  }

  /** One node: nobody else to ask. */
  async inquire(_inquiry: Inquiry, _waitMs: number): Promise<InquiryAnswers> {
    if (this.#closed) throw new HeraldError('HERALD_ERR_CLOSED', 'the engine is closed');
    return { answers: [], unanswered: [] };
  }

  /** No other node asks. */
  onInquiry(_responder: InquiryResponder): void {}

  async close(): Promise<void> {
    this.#closed = true;
    this.#listener = undefined;
    this.#history.clear();
    this.#tombstones.clear();
    this.#charge(-this.#bytes);
    this.#patterns.clear();
    this.#presence.clear();
    this.#users.clear();
    this.#idempotencyKeys.clear();
  }

  #hasInterest(channel: string): boolean {
    if (this.#patterns.size === 0) return false;
    for (const pattern of expandChannel(channel)) if (this.#patterns.has(pattern)) return true;
    return false;
  }

  idempotencyKeysForgotten(): number {
    return this.#idempotencyKeys.forgottenEarly;
  }

  historyCounts(): { channels: number; messages: number } {
    let messages = 0;
    for (const entry of this.#history.values()) messages += entry.messages.length;
    return { channels: this.#history.size, messages };
  }

  /** The newest id forgotten on `channel` (or the floor below every channel). */
  #forgottenThrough(channel: string): string {
    const mark = this.#history.get(channel)?.evictedThrough ?? this.#tombstones.get(channel);
    return mark !== undefined && mark > this.#floor ? mark : this.#floor;
  }

  #remember(message: Message): void {
    const { channel } = message;
    if (this.#historySize === 0) {
      // Kept by nobody, so forgotten at once: a reader from before it has a gap.
      this.#bury(channel, message.id);
      return;
    }
    let entry = this.#history.get(channel);
    if (entry === undefined) {
      // A channel that comes back takes over its tombstone: what it forgot before stays a gap.
      const tombstone = this.#tombstones.get(channel);
      if (tombstone !== undefined) this.#unbury(channel);
      entry = { messages: [], evictedThrough: tombstone, bytes: 0 };
      this.#history.set(channel, entry);
    } else if (channel !== this.#lastWritten) {
      // Re-inserting keeps the map in order of last write, oldest first, for the channel cap.
      this.#history.delete(channel);
      this.#history.set(channel, entry);
    }
    this.#lastWritten = channel;
    entry.messages.push(message);
    let delta = messageBytes(message);
    if (entry.messages.length > this.#historySize) {
      const evicted = entry.messages.shift()!;
      entry.evictedThrough = evicted.id;
      delta -= messageBytes(evicted);
    }
    entry.bytes += delta;
    this.#charge(delta);
    this.#expire(channel, entry);
    if (this.#history.size > this.#historyMaxChannels) {
      const [oldest, oldestEntry] = this.#history.entries().next().value!;
      this.#drop(oldest, oldestEntry);
    }
  }

  /** Drops messages past the TTL; returns what the channel still holds (a channel emptied is dropped). */
  #expire(channel: string, entry: ChannelHistory): Message[] {
    if (this.#historyTtlMs === 0) return entry.messages;
    const oldestKept = this.#clock.now() - this.#historyTtlMs;
    let drop = 0;
    let bytes = 0;
    while (drop < entry.messages.length && entry.messages[drop]!.publishedAt < oldestKept) bytes += messageBytes(entry.messages[drop++]!);
    if (drop === 0) return entry.messages;
    entry.evictedThrough = entry.messages.splice(0, drop)[drop - 1]!.id;
    entry.bytes -= bytes;
    this.#charge(-bytes);
    if (entry.messages.length === 0) this.#drop(channel, entry);
    return entry.messages;
  }

  /** Forgets a channel's whole history, leaving a tombstone where it ended. */
  #drop(channel: string, entry: ChannelHistory): void {
    this.#history.delete(channel);
    this.#charge(-entry.bytes);
    const last = entry.messages[entry.messages.length - 1]?.id ?? entry.evictedThrough;
    if (last !== undefined) this.#bury(channel, last);
  }

  /** Records that `channel` forgot everything up to `id`; past the cap the oldest tombstone folds into the floor. */
  #bury(channel: string, id: string): void {
    if (this.#tombstones.has(channel)) this.#unbury(channel);
    this.#tombstones.set(channel, id);
    this.#charge(tombstoneBytes(channel));
    if (this.#tombstones.size > this.#maxTombstones) this.#foldOldestTombstone();
  }

  #unbury(channel: string): void {
    this.#tombstones.delete(channel);
    this.#charge(-tombstoneBytes(channel));
  }

  /** Forgets the oldest tombstone; the floor rises to cover it, so its readers still see the gap. */
  #foldOldestTombstone(): boolean {
    const oldest = this.#tombstones.entries().next().value;
    if (oldest === undefined) return false;
    const [channel, id] = oldest;
    this.#unbury(channel);
    if (id > this.#floor) this.#floor = id;
    return true;
  }

  /** The memory budget is exceeded: forget the least recently written channels, then tombstones. */
  #reclaim(bytes: number): void {
    const target = this.#bytes - bytes;
    let messages = 0;
    while (this.#bytes > target) {
      const oldest = this.#history.entries().next().value;
      if (oldest !== undefined) {
        messages += oldest[1].messages.length;
        this.#drop(oldest[0], oldest[1]);
      } else if (!this.#foldOldestTombstone()) {
        break;
      }
    }
    if (messages > 0) this.#budget?.evicted('history', messages);
  }

  #charge(bytes: number): void {
    this.#bytes += bytes;
    this.#budget?.chargeHistory(bytes);
  }
}
