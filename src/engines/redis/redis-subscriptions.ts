/**
 * @module
 * Fan-in from Redis pub/sub to the node's listener: one subscription per channel or pattern in use
 * on this node (never per client; redis-target.ts), each message handed over once and in id order.
 *
 * Pub/sub drops whatever it carries while its connection is cut. The node remembers, per channel,
 * the last id it delivered (or where its interest began); once subscribed again, it reads from the
 * channel's stream whatever it missed meanwhile, so its subscribers lose nothing. What cannot be
 * read back (a pattern's channels, a history trimmed past it, a Redis that lost its data) is told
 * as a gap, once the subscriptions are live again (resubscribe).
 */
import type { Redis } from 'ioredis';
import { expandChannel } from '../../core/channel.js';
import type { GapListener, HistoryPage, HistoryQuery, MessageListener } from '../../core/engine.js';
import type { Message } from '../../core/message.js';
import { Echoes } from './echoes.js';
import { redisTarget } from './redis-target.js';
import { heraldIdOf, timeOf } from './stream-ids.js';

export interface RedisSubscriptionsOptions {
  /** Prefix of the pub/sub channel that carries a Herald channel's messages. */
  readonly channelPrefix: string;
  /** How long a publish of this node waits at most for pub/sub to bring it back (echoes.ts). */
  readonly echoTimeoutMs: number;
  /** The channel's position now: where catching up starts when nothing was delivered yet. */
  readonly position: (channel: string) => Promise<string>;
  /** Reads what a channel's stream holds, to catch up. */
  readonly history: (channel: string, query: HistoryQuery) => Promise<HistoryPage>;
  /** Told of every id delivered (see RedisStreams.saw). */
  readonly saw: (id: string) => void;
  readonly onError: (error: unknown, context: string) => void;
}

/** Channels whose last delivered id the node remembers, to drop echoes and to catch up. */
const TRACKED_CHANNELS = 100_000;

export class RedisSubscriptions {
  /** Local interest: pattern or channel → number of subscribe calls. */
  readonly #patterns = new Map<string, number>();
  /** Redis subscriptions: the exact channel or glob → patterns that need it. */
  readonly #redisSubscriptions = new Map<string, Set<string>>();
  /** Redis subscriptions being made: every subscribe() that needs one waits until it is live. */
  readonly #subscribing = new Map<string, Promise<void>>();
  /**
   * Per channel, the last id handed to the listener, or (nothing handed yet) the resume point
   * taken when interest in the channel began: where catching up starts.
   */
  readonly #delivered = new Map<string, string>();
  /**
   * Channels being caught up after a reconnect: what pub/sub brought meanwhile waits here. A later
   * reconnect replaces a channel's list: its catch-up, not the earlier one, hands the channel over.
   */
  readonly #catchingUp = new Map<string, Message[]>();
  /** While resubscribing, until its gaps are said: what the restored subscriptions bring waits here. */
  #heldUntilGaps: Message[] | undefined;
  /** Publishes of this node waiting for their message to reach the local listener. */
  readonly #echoes: Echoes;
  #listener: MessageListener | undefined;
  #gapListener: GapListener | undefined;
  /** Set while the node restores its subscriptions after (re)connecting: subscribe() waits for it. */
  #restoring: Promise<void> | undefined;

  constructor(
    private readonly subscriber: Redis,
    private readonly options: RedisSubscriptionsOptions,
  ) {
    this.#echoes = new Echoes(options.echoTimeoutMs);
    subscriber.on('message', (channel: string, payload: string) => this.#receive(channel, payload));
    subscriber.on('pmessage', (_glob: string, channel: string, payload: string) => this.#receive(channel, payload));
  }

  onMessage(listener: MessageListener): void {
    this.#listener = listener;
  }

  onGap(listener: GapListener): void {
    this.#gapListener = listener;
  }

  async subscribe(pattern: string): Promise<void> {
    const count = this.#patterns.get(pattern) ?? 0;
    this.#patterns.set(pattern, count + 1);
    const target = redisTarget(pattern, this.options.channelPrefix);
    let users = this.#redisSubscriptions.get(target.name);
    if (users === undefined) this.#redisSubscriptions.set(target.name, (users = new Set()));
    users.add(pattern);
    if (users.size === 1 && count === 0) {
      const live: Promise<void> = this.#listen(pattern, target).finally(() => {
        if (this.#subscribing.get(target.name) === live) this.#subscribing.delete(target.name);
      });
      this.#subscribing.set(target.name, live);
    }
    // A later subscriber (of this pattern, or of one sharing its Redis subscription) is not live
    // before the first, nor before the node has restored its subscriptions.
    await this.#subscribing.get(target.name);
    await this.#restoring;
  }

  async unsubscribe(pattern: string): Promise<void> {
    const count = this.#patterns.get(pattern);
    if (count === undefined) return;
    if (count > 1) {
      this.#patterns.set(pattern, count - 1);
      return;
    }
    this.#patterns.delete(pattern);
    // The last id of a channel nothing else here covers is not needed any more.
    if (!pattern.includes('*') && !this.#hasInterest(pattern)) this.#delivered.delete(pattern);
    const target = redisTarget(pattern, this.options.channelPrefix);
    const users = this.#redisSubscriptions.get(target.name);
    users?.delete(pattern);
    if (users === undefined || users.size > 0) return;
    this.#redisSubscriptions.delete(target.name);
    if (this.subscriber.status !== 'ready') return;
    try {
      await (target.glob ? this.subscriber.punsubscribe(target.name) : this.subscriber.unsubscribe(target.name));
    } catch (error) {
      this.options.onError(error, `redis unsubscribe ${target.name}`);
    }
  }

  /**
   * Runs `restore` (the node's whole return after (re)connecting) while subscribe() waits for it,
   * so that no new subscriber takes a subscription for live while it is not.
   */
  async whileRestoring(restore: () => Promise<void>): Promise<void> {
    let restored!: () => void;
    const restoring = new Promise<void>((resolve) => (restored = resolve));
    this.#restoring = restoring;
    try {
      await restore();
    } finally {
      restored();
      if (this.#restoring === restoring) this.#restoring = undefined;
    }
  }

  /**
   * Subscribes to everything again (the first time, or after pub/sub was cut, or Redis lost its
   * data) and returns the catch-ups to run, one per channel behind, each with what pub/sub brings
   * from now on held back until it has run. A new data set (`lostData`) means whatever was not delivered is
   * gone, so every subscription is told, and what the node delivered before says nothing about the
   * ids of the new data set: each channel starts again from `floor`.
   *
   * Gaps are said once the subscriptions are live, not before: a message published between a gap
   * said and the subscription that would carry it is neither delivered nor covered by that gap (a
   * pattern poller told of one, then missing what came just after). What the restored
   * subscriptions bring meanwhile waits, and follows the gaps: a session must get a message after
   * the gap that precedes it, or the client cannot tell where the loss was.
   */
  async resubscribe({ first, lostData, floor }: { first: boolean; lostData: boolean; floor: string }): Promise<Array<() => Promise<void>>> {
    const gaps = new Set<string>();
    if (lostData) {
      this.#delivered.clear();
      for (const pattern of this.#patterns.keys()) {
        gaps.add(pattern);
        if (!pattern.endsWith('*')) this.#track(pattern, floor);
      }
    }
    const targets = [...this.#redisSubscriptions.keys()];
    const channels = targets.filter((name) => !name.endsWith('*'));
    const globs = targets.filter((name) => name.endsWith('*'));
    const behind = first ? [] : [...this.#delivered.keys()].filter((channel) => this.#hasInterest(channel));
    if (!first) {
      for (const pattern of this.#patterns.keys()) {
        // A pattern's channels that never delivered here cannot be found again; nor can a
        // channel whose resume point was not recorded.
        if (pattern.endsWith('*') || !this.#delivered.has(pattern)) gaps.add(pattern);
      }
    }
    // Subscribed before reading, so that whatever the read misses, pub/sub brings.
    const waiting = behind.map((channel) => {
      const arrived: Message[] = [];
      this.#catchingUp.set(channel, arrived);
      return { channel, arrived };
    });
    const held: Message[] = (this.#heldUntilGaps = []);
    try {
      if (channels.length > 0) await this.subscriber.subscribe(...channels);
      if (globs.length > 0) await this.subscriber.psubscribe(...globs);
    } catch (error) {
      // Caught up by the next try (which subscribes to everything again), not by this one.
      for (const { channel, arrived } of waiting) if (this.#catchingUp.get(channel) === arrived) this.#catchingUp.delete(channel);
      throw error;
    } finally {
      // Said even when subscribing failed: whatever came meanwhile follows them either way.
      if (this.#heldUntilGaps === held) this.#heldUntilGaps = undefined;
      for (const channel of gaps) this.#gapListener?.(channel);
      for (const message of held) this.#hand(message);
    }
    return waiting.map(({ channel, arrived }) => () => this.#catchUp(channel, arrived));
  }

  /**
   * Hands over what a channel missed while pub/sub was cut, then what pub/sub brought meanwhile
   * (`arrived`). Not if pub/sub was cut again meanwhile: what this read of history holds would be
   * handed after the next reconnect's gaps, what pub/sub brought before that cut would be dropped
   * with the list it replaced, and what came after it would move the channel past what that cut
   * lost. That reconnect's own catch-up reads from the same point, and hands everything over.
   */
  async #catchUp(channel: string, arrived: Message[]): Promise<void> {
    let missed: readonly Message[] = [];
    let lost = false;
    try {
      const page = await this.options.history(channel, { since: this.#delivered.get(channel) });
      missed = page.messages;
      // Redis lost the channel's history meanwhile (trimmed past it, or expired).
      lost = page.gap;
    } catch (error) {
      // What arrives now would move the channel past what could not be read.
      this.options.onError(error, `catching up ${channel}`);
      lost = true;
    }
    if (this.#catchingUp.get(channel) !== arrived) return;
    this.#catchingUp.delete(channel);
    if (lost) this.#gapListener?.(channel);
    for (const message of [...missed, ...arrived]) this.#hand(message);
  }

  /** Waits until pub/sub has brought this node's own publish back to its listener (see echoes.ts). */
  echo(message: Message): Promise<void> {
    if (!this.#hasInterest(message.channel) || this.subscriber.status !== 'ready') return Promise.resolve();
    const last = this.#delivered.get(message.channel);
    if (last !== undefined && last >= message.id) return Promise.resolve();
    return this.#echoes.wait(message.channel, message.id);
  }

  close(): void {
    this.#listener = undefined;
    this.#gapListener = undefined;
    this.#echoes.clear();
  }

  /** Makes the Redis subscription for `pattern`; never rejects. */
  async #listen(pattern: string, target: { name: string; glob: boolean }): Promise<void> {
    // Restoring may or may not have taken this target: subscribing twice does no harm.
    await this.#restoring;
    // While Redis is away the interest is only recorded: reconnecting subscribes to all of it.
    if (this.subscriber.status !== 'ready') return;
    if (!target.glob) await this.#markStart(pattern);
    try {
      await (target.glob ? this.subscriber.psubscribe(target.name) : this.subscriber.subscribe(target.name));
    } catch (error) {
      // Later subscribers of this node count on the subscription: start the connection over,
      // which subscribes to everything again and catches up.
      this.options.onError(error, `redis subscribe ${target.name} failed: reconnecting`);
      this.subscriber.disconnect(true);
    }
  }

  /**
   * Records where catching up starts for a channel nothing was delivered on yet. Taken before the
   * subscription is live: whatever pub/sub misses from then on, history holds (or says it lost).
   */
  async #markStart(channel: string): Promise<void> {
    if (this.#delivered.has(channel)) return;
    try {
      const start = await this.options.position(channel);
      if (!this.#delivered.has(channel) && this.#patterns.has(channel)) this.#track(channel, start);
    } catch (error) {
      // Without a start, an outage before the first delivery is reported as a gap instead.
      this.options.onError(error, `resume point of ${channel}`);
    }
  }

  #receive(redisChannel: string, payload: string): void {
    const { channelPrefix } = this.options;
    if (!redisChannel.startsWith(channelPrefix)) return;
    const channel = redisChannel.slice(channelPrefix.length);
    const space = payload.indexOf(' ');
    const streamId = payload.slice(0, space);
    let message: Message;
    try {
      const json = payload.slice(space + 1);
      message = { id: heraldIdOf(streamId), channel, data: JSON.parse(json), publishedAt: timeOf(streamId), size: json.length };
    } catch (error) {
      this.options.onError(error, `unreadable message on ${redisChannel}`);
      return;
    }
    const waiting = this.#catchingUp.get(channel) ?? this.#heldUntilGaps;
    if (waiting !== undefined) waiting.push(message);
    else this.#hand(message);
  }

  /**
   * Hands a message to the listener unless it already had it: a channel matched by several of the
   * node's subscriptions arrives once per subscription, and catching up overlaps pub/sub.
   */
  #hand(message: Message): void {
    const { channel, id } = message;
    const last = this.#delivered.get(channel);
    if (last !== undefined && id <= last) return;
    this.options.saw(id);
    if (this.#hasInterest(channel)) {
      this.#track(channel, id);
      this.#listener?.(message);
    }
    // Settled even when interest ended meanwhile: the publish is done either way.
    this.#echoes.arrived(channel, id);
  }

  /** Least recently delivered first, so the cap forgets quiet channels, not busy ones. */
  #track(channel: string, id: string): void {
    if (this.#delivered.has(channel)) this.#delivered.delete(channel);
    else if (this.#delivered.size >= TRACKED_CHANNELS) this.#delivered.delete(this.#delivered.keys().next().value!);
    this.#delivered.set(channel, id);
  }

  #hasInterest(channel: string): boolean {
    if (this.#patterns.size === 0) return false;
    for (const pattern of expandChannel(channel)) if (this.#patterns.has(pattern)) return true;
    return false;
  }
}
