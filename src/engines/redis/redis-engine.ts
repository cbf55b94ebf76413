/**
 * @module
 * The engine for a cluster of Herald nodes joined through Redis.
 *
 * - Ids and history: one Redis stream per channel. A Lua script appends (XADD, trimmed to the
 *   history size and age) and publishes in one atomic step, so Redis issues every id and every
 *   node sees one channel's messages in id order.
 * - Fan-out: Redis pub/sub, one subscription per channel or pattern in use on this node (never
 *   per client); the node's hub then fans out to its sessions.
 * - Presence: see redis-presence.ts. Control commands and kept revocations: see redis-control.ts.
 *   Webhook events owed: see redis-outbox.ts.
 * - Faults: commands never queue while Redis is away (publishes fail at once with
 *   HERALD_ERR_ENGINE_UNAVAILABLE, a 503 to clients); ioredis reconnects by itself; the node then
 *   subscribes again and reads from the streams whatever it missed meanwhile on every channel it
 *   has interest in (from the last id delivered, or from where interest began), so subscribers of
 *   this node lose nothing pub/sub dropped. What cannot be read back (a pattern's channels, a
 *   history trimmed past it, a Redis that lost its data) is reported through onGap.
 *
 * Sessions stay node-local: a client that lands on another node is told to handshake again there,
 * and resumes from the shared history.
 */
import { Redis, ReplyError } from 'ioredis';
import { expandChannel } from '../../core/channel.js';
import type { ControlCommand, Revocation } from '../../core/control.js';
import type { ControlListener, Engine, EngineHealth, GapListener, HistoryPage, HistoryQuery, Inquiry, InquiryAnswers, InquiryResponder, MessageListener, PresenceEntry, PresenceJoin, PresenceListener, Published, PublishRequest, UserSweep } from '../../core/engine.js';
import { HeraldError } from '../../core/errors.js';
import { HISTORY_DEFAULTS } from '../../core/history-defaults.js';
import { isFutureId, randomId } from '../../core/ids.js';
import { redactUrl } from '../../core/redact.js';
import type { Message } from '../../core/message.js';
import type { Outbox } from '../../core/outbox.js';
import { Echoes } from './echoes.js';
import { RedisControl } from './redis-control.js';
import { RedisInquiry } from './redis-inquiry.js';
import { RedisOutbox } from './redis-outbox.js';
import { redisTarget } from './redis-target.js';
import { RedisPresence } from './redis-presence.js';
import { RedisUsers } from './redis-users.js';
import { DELETE_HISTORY_SCRIPT, FLOOR_SCRIPT, HISTORY_SCRIPT, POSITION_SCRIPT, PUBLISH_SCRIPT } from './scripts.js';
import { heraldIdOf, idBefore, msOf, rangeStartAfter, timeOf } from './stream-ids.js';

export interface RedisEngineOptions {
  /** `redis://[user:password@]host:port[/db]`. */
  url: string;
  /** Prefix of every key and pub/sub channel, so several clusters can share one Redis. */
  keyPrefix?: string;
  /** Messages kept per channel; 0 keeps none (ids are still cluster-wide). */
  historySize?: number;
  /** Messages older than this leave history; 0 = no age limit. */
  historyTtlMs?: number;
  /** How long a dead node's presence members linger before they are dropped. */
  presenceTtlMs?: number;
  /** A Redis command unanswered for this long fails (and the operation with it). */
  commandTimeoutMs?: number;
  /** This node's name in presence (default: random). */
  nodeId?: string;
  /** Told of Redis errors and of what the engine did about them (logging). */
  onError?: (error: unknown, context: string) => void;
}

export const REDIS_ENGINE_DEFAULTS = {
  keyPrefix: 'herald:',
  ...HISTORY_DEFAULTS,
  presenceTtlMs: 30_000,
  commandTimeoutMs: 2_000,
} as const;

/** Channels whose last delivered id the node remembers, to drop echoes and to catch up. */
const TRACKED_CHANNELS = 100_000;
/** How soon a node whose first round trips after connecting failed tries them again. */
const CONNECT_RETRY_MS = 500;
/** Without history, a stream only carries the channel's last id: it may go when the channel is quiet. */
const ID_ONLY_STREAM_EXPIRY_MS = 3_600_000;

interface RawEntry extends Array<unknown> {
  0: string;
  1: string[];
}

export class RedisEngine implements Engine {
  readonly #options: Required<Omit<RedisEngineOptions, 'onError' | 'nodeId'>>;
  readonly #onError: (error: unknown, context: string) => void;
  /** For commands: never queues while disconnected, so an outage is an error, not a hang. */
  readonly #commands: Redis;
  /** For pub/sub only; resubscribed by the engine itself after a reconnect (then it catches up). */
  readonly #subscriber: Redis;
  readonly #presence: RedisPresence;
  readonly #users: RedisUsers;
  readonly #control: RedisControl;
  readonly #inquiry: RedisInquiry;
  readonly #nodeId: string;
  readonly #channelPrefix: string;
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
  /** Channels being caught up after a reconnect: what pub/sub brought meanwhile waits here. */
  readonly #catchingUp = new Map<string, Message[]>();
  /** While restoring, until its gaps are said: what the restored subscriptions bring waits here (#restore). */
  #heldUntilGaps: Message[] | undefined;
  /** Publishes of this node waiting for their message to reach the local listener. */
  readonly #echoes: Echoes;
  #listener: MessageListener | undefined;
  #gapListener: GapListener | undefined;
  /** Ids below this were issued before the Redis data set began: their history is gone. */
  #floor: string | undefined;
  /** The life of the Redis data set the node knows (FLOOR_SCRIPT): when it changes, Redis lost its data. */
  #epoch: string | undefined;
  /** The newest id the node has seen (issued, delivered, read): a Redis that lost its data must go above it. */
  #newest = '';
  /** The pub/sub connection dropped since the node last subscribed: what it carried meanwhile is lost. */
  #subscriberLost = false;
  /** Set while the node restores its subscriptions after (re)connecting: subscribe() waits for it. */
  #restoring: Promise<void> | undefined;
  #wasReady = false;
  #closed = false;
  readonly #ready: Promise<void>;

  constructor(options: RedisEngineOptions) {
    const defaults = REDIS_ENGINE_DEFAULTS;
    this.#options = {
      url: options.url,
      keyPrefix: options.keyPrefix ?? defaults.keyPrefix,
      historySize: options.historySize ?? defaults.historySize,
      historyTtlMs: options.historyTtlMs ?? defaults.historyTtlMs,
      presenceTtlMs: options.presenceTtlMs ?? defaults.presenceTtlMs,
      commandTimeoutMs: options.commandTimeoutMs ?? defaults.commandTimeoutMs,
    };
    const { historySize, historyTtlMs, presenceTtlMs, commandTimeoutMs } = this.#options;
    if (!Number.isInteger(historySize) || historySize < 0) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `historySize must be a non-negative integer, got ${historySize}`);
    }
    for (const [name, value] of Object.entries({ historyTtlMs, presenceTtlMs, commandTimeoutMs })) {
      if (!Number.isFinite(value) || value < 0 || (name !== 'historyTtlMs' && value === 0)) {
        throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${name} must be a ${name === 'historyTtlMs' ? 'non-negative' : 'positive'} number of milliseconds, got ${value}`);
      }
    }
    this.#onError = options.onError ?? (() => {});
    this.#echoes = new Echoes(commandTimeoutMs);
    this.#channelPrefix = `${this.#options.keyPrefix}c:`;
    const common = {
      // Keep trying for ever, a little slower each time: an outage ends when Redis is back.
      retryStrategy: (attempt: number) => Math.min(100 * attempt, 2_000),
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      commandTimeout: commandTimeoutMs,
    };
    try {
      this.#commands = new Redis(options.url, { ...common, connectionName: 'herald' });
      this.#subscriber = new Redis(options.url, { ...common, autoResubscribe: false, connectionName: 'herald-sub' });
    } catch (error) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `cannot use Redis URL ${JSON.stringify(redactUrl(options.url))}: ${(error as Error).message}`, { cause: error });
    }
    for (const [name, connection] of [['commands', this.#commands], ['subscriber', this.#subscriber]] as const) {
      connection.on('error', (error: unknown) => this.#onError(error, `redis ${name} connection`));
    }
    this.#commands.defineCommand('heraldPublish', { numberOfKeys: 3, lua: PUBLISH_SCRIPT });
    this.#commands.defineCommand('heraldHistory', { numberOfKeys: 1, lua: HISTORY_SCRIPT });
    this.#commands.defineCommand('heraldPosition', { numberOfKeys: 1, lua: POSITION_SCRIPT });
    this.#commands.defineCommand('heraldFloor', { numberOfKeys: 2, lua: FLOOR_SCRIPT });
    this.#commands.defineCommand('heraldDeleteHistory', { numberOfKeys: 1, lua: DELETE_HISTORY_SCRIPT });
    const nodeId = options.nodeId ?? randomId().slice(0, 12);
    this.#presence = new RedisPresence(this.#commands, this.#subscriber, { keyPrefix: this.#options.keyPrefix, ttlMs: presenceTtlMs, nodeId, onError: this.#onError });
    this.#users = new RedisUsers(this.#commands, { keyPrefix: this.#options.keyPrefix, nodeId, onError: this.#onError });
    this.#control = new RedisControl(this.#commands, this.#subscriber, { keyPrefix: this.#options.keyPrefix, nodeId, onError: this.#onError });
    this.#inquiry = new RedisInquiry(this.#commands, this.#subscriber, { keyPrefix: this.#options.keyPrefix, nodeId, liveNodes: () => this.#presence.liveNodes(), onError: this.#onError });
    this.#nodeId = nodeId;
    this.#subscriber.on('message', (channel: string, payload: string) => this.#receive(channel, payload));
    this.#subscriber.on('pmessage', (_glob: string, channel: string, payload: string) => this.#receive(channel, payload));
    // Until the node has read the floor again, it cannot tell whether Redis lost its data: no publishes.
    this.#commands.on('close', () => (this.#floor = undefined));
    this.#subscriber.on('close', () => (this.#subscriberLost = true));
    this.#ready = new Promise((resolve) => {
      let retry: NodeJS.Timeout | undefined;
      const check = () => {
        clearTimeout(retry);
        if (this.#closed || this.#commands.status !== 'ready' || this.#subscriber.status !== 'ready') return;
        this.#connected().then(resolve, (error) => {
          // Redis answered but refused (out of memory, no permission, a script busy…): both
          // connections stay up, so no 'ready' comes to try again by itself. Until a try goes
          // through, publishes are refused: the subscriptions may not be live, and what they
          // missed would be lost without a word. Then everything is subscribed to afresh.
          this.#onError(error, `redis reconnect: trying again in ${CONNECT_RETRY_MS} ms`);
          this.#floor = undefined;
          this.#subscriberLost = true;
          retry = setTimeout(check, CONNECT_RETRY_MS);
          retry.unref();
        });
      };
      this.#commands.on('ready', check);
      this.#subscriber.on('ready', check);
    });
  }

  /** Resolves once both connections are up the first time (it never rejects: Redis may come later). */
  ready(): Promise<void> {
    return this.#ready;
  }

  health(): EngineHealth {
    if (this.#closed) return { healthy: false, detail: 'closed' };
    if (this.#commands.status !== 'ready' || this.#subscriber.status !== 'ready' || this.#floor === undefined) {
      return { healthy: false, detail: `redis unreachable (${this.#commands.status}/${this.#subscriber.status})` };
    }
    return { healthy: true };
  }

  async publish(request: PublishRequest): Promise<Published> {
    // `undefined` has no JSON form; every subscriber would read it back as null anyway.
    const data = request.json ?? JSON.stringify(request.data) ?? 'null';
    const { historySize, historyTtlMs } = this.#options;
    const expiry = this.#streamExpiryMs();
    const { key = '', windowMs = 0 } = request.idempotency ?? {};
    const result = (await this.#run('publish', () =>
      this.#call('heraldPublish', this.#streamKey(request.channel), this.#floorKey, `${this.#options.keyPrefix}idem:${key}`, this.#channelPrefix + request.channel, data, historySize, historyTtlMs, expiry, windowMs, request.channel),
    )) as string | [string];
    if (Array.isArray(result)) {
      // The key was used: the first publish's id and channel, nothing stored, nothing to wait for.
      const [firstId, channel] = splitOnce(result[0]);
      return { id: heraldIdOf(firstId), channel, data: request.data, publishedAt: timeOf(firstId), duplicate: true };
    }
    const streamId = result;
    const message: Message = { id: this.#saw(heraldIdOf(streamId)), channel: request.channel, data: request.data, publishedAt: timeOf(streamId), size: data.length };
    await this.#echo(message);
    return message;
  }

  async subscribe(pattern: string): Promise<void> {
    const count = this.#patterns.get(pattern) ?? 0;
    this.#patterns.set(pattern, count + 1);
    const target = redisTarget(pattern, this.#channelPrefix);
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

  /** Makes the Redis subscription for `pattern`; never rejects. */
  async #listen(pattern: string, target: { name: string; glob: boolean }): Promise<void> {
    // Restoring may or may not have taken this target: subscribing twice does no harm.
    await this.#restoring;
    // While Redis is away the interest is only recorded: reconnecting subscribes to all of it.
    if (this.#subscriber.status !== 'ready') return;
    if (!target.glob) await this.#markStart(pattern);
    try {
      await (target.glob ? this.#subscriber.psubscribe(target.name) : this.#subscriber.subscribe(target.name));
    } catch (error) {
      // Later subscribers of this node count on the subscription: start the connection over,
      // which subscribes to everything again and catches up.
      this.#onError(error, `redis subscribe ${target.name} failed: reconnecting`);
      this.#subscriber.disconnect(true);
    }
  }

  /**
   * Records where catching up starts for a channel nothing was delivered on yet. Taken before the
   * subscription is live: whatever pub/sub misses from then on, history holds (or says it lost).
   */
  async #markStart(channel: string): Promise<void> {
    if (this.#delivered.has(channel)) return;
    try {
      const start = await this.position(channel);
      if (!this.#delivered.has(channel) && this.#patterns.has(channel)) this.#track(channel, start);
    } catch (error) {
      // Without a start, an outage before the first delivery is reported as a gap instead.
      this.#onError(error, `resume point of ${channel}`);
    }
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
    const target = redisTarget(pattern, this.#channelPrefix);
    const users = this.#redisSubscriptions.get(target.name);
    users?.delete(pattern);
    if (users === undefined || users.size > 0) return;
    this.#redisSubscriptions.delete(target.name);
    if (this.#subscriber.status !== 'ready') return;
    try {
      await (target.glob ? this.#subscriber.punsubscribe(target.name) : this.#subscriber.unsubscribe(target.name));
    } catch (error) {
      this.#onError(error, `redis unsubscribe ${target.name}`);
    }
  }

  async history(channel: string, query: HistoryQuery = {}): Promise<HistoryPage> {
    const { since, limit } = query;
    const start = since === undefined ? '-' : rangeStartAfter(since);
    // Nothing sorts after it: a cursor no engine gave (core/ids.ts isFutureId).
    if (start === undefined) return { messages: [], gap: true };
    const count = limit === undefined || !Number.isFinite(limit) ? 0 : Math.max(0, Math.floor(limit));
    if (limit !== undefined && count === 0) return { messages: [], gap: false };
    const result = (await this.#run('history', () => this.#call('heraldHistory', this.#streamKey(channel), start, count, this.#options.historyTtlMs))) as
      | [string, RawEntry[], string, string]
      | [string];
    if (result.length === 1) {
      // No stream: never published since the data set began (the floor), or quiet long enough for
      // its key to expire — a reader from before that may have missed what it held.
      const expiry = this.#streamExpiryMs();
      const now = Number(result[0]);
      const gap = since !== undefined && (since < this.#floor! || (expiry > 0 && since < idBefore(now - expiry)) || isFutureId(since, this.#issuedUpTo(now)));
      return { messages: [], gap };
    }
    const [maxDeleted, entries, lastGenerated, now] = result;
    const messages = entries.map((entry) => this.#fromEntry(channel, entry));
    if (messages.length > 0) this.#saw(messages[messages.length - 1]!.id);
    // A cursor after every id Redis could have given (its clock, or the stream's last id if that is ahead).
    const future = since !== undefined && since > heraldIdOf(lastGenerated) && isFutureId(since, this.#issuedUpTo(Number(now)));
    const gap = since !== undefined && ((maxDeleted !== '0-0' && since < heraldIdOf(maxDeleted)) || since < this.#floor! || future);
    return { messages, gap };
  }

  /** The newest moment an id may have been issued for: Redis's clock, or the floor when the clock is behind it. */
  #issuedUpTo(redisNowMs: number): number {
    return Math.max(redisNowMs, msOf(this.#floor!) + 1);
  }

  /**
   * How long a quiet stream's key lives: it may go once all it holds has aged out; twice the TTL
   * spares the readers of a briefly quiet channel a gap they did not have (see PUBLISH_SCRIPT).
   */
  #streamExpiryMs(): number {
    const { historySize, historyTtlMs } = this.#options;
    return historyTtlMs > 0 ? 2 * historyTtlMs : historySize === 0 ? ID_ONLY_STREAM_EXPIRY_MS : 0;
  }

  async position(channel: string): Promise<string> {
    const [kind, value] = (await this.#run('position', () => this.#call('heraldPosition', this.#streamKey(channel)))) as [string, string];
    const id = kind === 'id' ? heraldIdOf(value) : idBefore(Number(value));
    // Redis's clock may be behind the floor (it lost its data): a point below the floor would be a
    // gap to whoever resumes from it, every time, until the channel has a message.
    const floor = this.#floor;
    return this.#saw(floor !== undefined && id < floor ? floor : id);
  }

  async deleteHistory(channel: string): Promise<void> {
    await this.#run('delete history', () => this.#call('heraldDeleteHistory', this.#streamKey(channel)));
  }

  outbox(name: string, maxLength: number): Outbox {
    return new RedisOutbox(this.#commands, { keyPrefix: this.#options.keyPrefix, name, maxLength, run: (what, operation) => this.#run(what, operation) });
  }

  userConnected(user: string): Promise<boolean> {
    return this.#users.connected(user);
  }

  userDisconnected(user: string): Promise<boolean> {
    return this.#users.disconnected(user);
  }

  /** Nothing while Redis is out of reach (no error each sweep): the records wait there, and so do the windows. */
  sweepUsers(graceMs: number): Promise<UserSweep> {
    return this.#users.sweep(graceMs);
  }

  join(channel: string, entry: PresenceJoin): Promise<void> {
    return this.#presence.join(channel, entry);
  }

  leave(channel: string, session: string): Promise<void> {
    return this.#presence.leave(channel, session);
  }

  async presence(channel: string): Promise<readonly PresenceEntry[]> {
    return this.#run('presence', () => this.#presence.members(channel));
  }

  onPresence(listener: PresenceListener): void {
    this.#presence.onPresence(listener);
  }

  onMessage(listener: MessageListener): void {
    this.#listener = listener;
  }

  onGap(listener: GapListener): void {
    this.#gapListener = listener;
  }

  broadcast(command: ControlCommand): Promise<void> {
    return this.#run('broadcast', () => this.#control.broadcast(command));
  }

  revoke(revocation: Revocation): Promise<Revocation> {
    return this.#run('revoke', () => this.#control.revoke(revocation));
  }

  onControl(listener: ControlListener): void {
    this.#control.onControl(listener);
  }

  get nodeId(): string {
    return this.#nodeId;
  }

  inquire(inquiry: Inquiry, waitMs: number): Promise<InquiryAnswers> {
    return this.#run('inquire', () => this.#inquiry.inquire(inquiry, waitMs));
  }

  onInquiry(responder: InquiryResponder): void {
    this.#inquiry.onInquiry(responder);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener = undefined;
    this.#gapListener = undefined;
    this.#echoes.clear();
    this.#inquiry.close();
    await this.#users.close();
    await this.#presence.close();
    await Promise.all([this.#commands, this.#subscriber].map((connection) => (connection.status === 'ready' ? connection.quit().catch(() => connection.disconnect()) : connection.disconnect())));
  }

  /**
   * Both connections are up: learn the floor and the epoch, then (first time, or after pub/sub
   * was cut) subscribe to everything and catch up. A new epoch means Redis lost its data:
   * whatever was not delivered is gone, so every subscription is told, and what the node
   * delivered before says nothing about the ids of the new data set.
   *
   * Gaps are said once the subscriptions are live, not before: a message published between a gap
   * said and the subscription that would carry it is neither delivered nor covered by that gap (a
   * pattern poller told of one, then missing what came just after). What the restored
   * subscriptions bring meanwhile waits, and follows the gaps: a session must get a message after
   * the gap that precedes it, or the client cannot tell where the loss was.
   * Until the subscriptions are restored, subscribe() waits (#restoring), so no new subscriber
   * takes a subscription for live while it is not.
   */
  async #connected(): Promise<void> {
    let restored!: () => void;
    const restoring = new Promise<void>((resolve) => (restored = resolve));
    this.#restoring = restoring;
    try {
      await this.#restore();
    } finally {
      restored();
      if (this.#restoring === restoring) this.#restoring = undefined;
    }
  }

  async #restore(): Promise<void> {
    const newestMs = this.#newest === '' ? 0 : msOf(this.#newest);
    const [floorMs, epoch] = (await this.#call('heraldFloor', this.#floorKey, `${this.#options.keyPrefix}epoch`, this.#epoch ?? '', newestMs, randomId())) as [string, string];
    const lostData = this.#epoch !== undefined && epoch !== this.#epoch;
    this.#epoch = epoch;
    const floor = idBefore(Number(floorMs));
    // The first time, nothing catches up afterwards: publishes (which need the floor) wait until
    // every subscription made before Redis came is live, or theirs would miss them.
    if (this.#wasReady) this.#floor = floor;
    const first = !this.#wasReady;
    this.#wasReady = true;
    if (!first && !lostData && !this.#subscriberLost) return this.#livenessWritten();
    this.#subscriberLost = false;
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
    for (const channel of behind) this.#catchingUp.set(channel, []);
    const held: Message[] = (this.#heldUntilGaps = []);
    try {
      if (channels.length > 0) await this.#subscriber.subscribe(...channels);
      if (globs.length > 0) await this.#subscriber.psubscribe(...globs);
    } catch (error) {
      // Caught up by the next try (which subscribes to everything again), not by this one.
      for (const channel of behind) this.#catchingUp.delete(channel);
      throw error;
    } finally {
      // Said even when subscribing failed: whatever came meanwhile follows them either way.
      if (this.#heldUntilGaps === held) this.#heldUntilGaps = undefined;
      for (const channel of gaps) this.#gapListener?.(channel);
      for (const message of held) this.#hand(message);
    }
    // Before the node counts as healthy: a token revoked while it was away (or down) is known first.
    await this.#control.connected(lostData);
    await this.#inquiry.connected();
    this.#floor = floor;
    await Promise.all([this.#livenessWritten(), ...behind.map((channel) => this.#catchUp(channel))]);
  }

  /** The node's liveness (presence's) first: user records of a node without it are a dead node's. */
  async #livenessWritten(): Promise<void> {
    await this.#presence.connected();
    await this.#users.reconnected();
  }

  async #catchUp(channel: string): Promise<void> {
    let missed: readonly Message[] = [];
    try {
      const page = await this.history(channel, { since: this.#delivered.get(channel) });
      missed = page.messages;
      // Redis lost the channel's history meanwhile (trimmed past it, or expired).
      if (page.gap) this.#gapListener?.(channel);
    } catch (error) {
      // What arrives now would move the channel past what could not be read.
      this.#onError(error, `catching up ${channel}`);
      this.#gapListener?.(channel);
    }
    const arrived = this.#catchingUp.get(channel) ?? [];
    this.#catchingUp.delete(channel);
    for (const message of [...missed, ...arrived]) this.#hand(message);
  }

  #receive(redisChannel: string, payload: string): void {
    if (!redisChannel.startsWith(this.#channelPrefix)) return;
    const channel = redisChannel.slice(this.#channelPrefix.length);
    const space = payload.indexOf(' ');
    const streamId = payload.slice(0, space);
    let message: Message;
    try {
      const json = payload.slice(space + 1);
      message = { id: heraldIdOf(streamId), channel, data: JSON.parse(json), publishedAt: timeOf(streamId), size: json.length };
    } catch (error) {
      this.#onError(error, `unreadable message on ${redisChannel}`);
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
    this.#saw(id);
    if (this.#hasInterest(channel)) {
      this.#track(channel, id);
      this.#listener?.(message);
    }
    // Settled even when interest ended meanwhile: the publish is done either way.
    this.#echoes.arrived(channel, id);
  }

  /** Waits until pub/sub has brought this node's own publish back to its listener (see echoes.ts). */
  #echo(message: Message): Promise<void> {
    if (!this.#hasInterest(message.channel) || this.#subscriber.status !== 'ready') return Promise.resolve();
    const last = this.#delivered.get(message.channel);
    if (last !== undefined && last >= message.id) return Promise.resolve();
    return this.#echoes.wait(message.channel, message.id);
  }

  /** Least recently delivered first, so the cap forgets quiet channels, not busy ones. */
  #track(channel: string, id: string): void {
    if (this.#delivered.has(channel)) this.#delivered.delete(channel);
    else if (this.#delivered.size >= TRACKED_CHANNELS) this.#delivered.delete(this.#delivered.keys().next().value!);
    this.#delivered.set(channel, id);
  }

  #saw(id: string): string {
    if (id > this.#newest) this.#newest = id;
    return id;
  }

  #hasInterest(channel: string): boolean {
    if (this.#patterns.size === 0) return false;
    for (const pattern of expandChannel(channel)) if (this.#patterns.has(pattern)) return true;
    return false;
  }

  #fromEntry(channel: string, [streamId, fields]: RawEntry): Message {
    return { id: heraldIdOf(streamId), channel, data: JSON.parse(fields[1]!), publishedAt: timeOf(streamId), size: fields[1]!.length };
  }

  get #floorKey(): string {
    return `${this.#options.keyPrefix}floor`;
  }

  #streamKey(channel: string): string {
    return `${this.#options.keyPrefix}h:${channel}`;
  }

  #call(command: string, ...args: (string | number)[]): Promise<unknown> {
    return (this.#commands as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[command]!(...args);
  }

  /**
   * Runs a Redis operation; any failure of Redis itself becomes HERALD_ERR_ENGINE_UNAVAILABLE.
   * Unless Redis answered with an error, the command went out and its answer was lost (a timeout,
   * a connection cut by a restart): Redis may have run it, so the outcome is unknown.
   */
  async #run<T>(what: string, operation: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new HeraldError('HERALD_ERR_CLOSED', 'the engine is closed');
    if (this.#commands.status !== 'ready' || this.#floor === undefined) {
      throw new HeraldError('HERALD_ERR_ENGINE_UNAVAILABLE', `cannot ${what}: Redis is unreachable`);
    }
    try {
      return await operation();
    } catch (error) {
      throw new HeraldError('HERALD_ERR_ENGINE_UNAVAILABLE', `cannot ${what}: ${(error as Error).message}`, { cause: error, outcomeUnknown: !(error instanceof ReplyError) });
    }
  }
}

/** `"<stream id> <channel>"` → its two parts (a channel name may hold spaces; an id never does). */
function splitOnce(text: string): [string, string] {
  const space = text.indexOf(' ');
  return [text.slice(0, space), text.slice(space + 1)];
}
