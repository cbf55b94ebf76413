/**
 * @module
 * The engine for a cluster of Herald nodes joined through Redis: two connections (commands, and
 * pub/sub), the parts that share them, and what the node does each time Redis comes back.
 *
 * - Ids and history: one Redis stream per channel, see redis-streams.ts.
 * - Fan-out: Redis pub/sub, one subscription per channel or pattern in use on this node (never
 *   per client), see redis-subscriptions.ts; the node's hub then fans out to its sessions.
 * - Presence: see redis-presence.ts; who is online: redis-users.ts. Control commands and kept
 *   revocations: see redis-control.ts. Questions to every node: redis-inquiry.ts. Webhook events
 *   owed: see redis-outbox.ts.
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
import type { ControlCommand, Revocation } from '../../core/control.js';
import type { ControlListener, Engine, EngineHealth, GapListener, HistoryPage, HistoryQuery, Inquiry, InquiryAnswers, InquiryResponder, MessageListener, PresenceEntry, PresenceJoin, PresenceListener, Published, PublishRequest, UserSweep } from '../../core/engine.js';
import { HeraldError } from '../../core/errors.js';
import { HISTORY_DEFAULTS } from '../../core/history-defaults.js';
import { randomId } from '../../core/ids.js';
import { redactUrl } from '../../core/redact.js';
import type { Outbox } from '../../core/outbox.js';
import { RedisControl } from './redis-control.js';
import { RedisInquiry } from './redis-inquiry.js';
import { RedisOutbox } from './redis-outbox.js';
import { RedisPresence } from './redis-presence.js';
import { RedisStreams } from './redis-streams.js';
import { RedisSubscriptions } from './redis-subscriptions.js';
import { RedisUsers } from './redis-users.js';

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

/** How soon a node whose first round trips after connecting failed tries them again. */
const CONNECT_RETRY_MS = 500;

export class RedisEngine implements Engine {
  readonly #options: Required<Omit<RedisEngineOptions, 'onError' | 'nodeId'>>;
  readonly #onError: (error: unknown, context: string) => void;
  /** For commands: never queues while disconnected, so an outage is an error, not a hang. */
  readonly #commands: Redis;
  /** For pub/sub only; resubscribed by the engine itself after a reconnect (then it catches up). */
  readonly #subscriber: Redis;
  readonly #streams: RedisStreams;
  readonly #subscriptions: RedisSubscriptions;
  readonly #presence: RedisPresence;
  readonly #users: RedisUsers;
  readonly #control: RedisControl;
  readonly #inquiry: RedisInquiry;
  readonly #nodeId: string;
  /** The pub/sub connection dropped since the node last subscribed: what it carried meanwhile is lost. */
  #subscriberLost = false;
  #wasReady = false;
  #closed = false;
  readonly #ready: Promise<void>;

  constructor(options: RedisEngineOptions) {
    this.#options = resolveOptions(options);
    const { keyPrefix, historySize, historyTtlMs, presenceTtlMs, commandTimeoutMs } = this.#options;
    this.#onError = options.onError ?? (() => {});
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
    const channelPrefix = `${keyPrefix}c:`;
    this.#streams = new RedisStreams(this.#commands, { keyPrefix, channelPrefix, historySize, historyTtlMs, run: (what, operation) => this.#run(what, operation) });
    const nodeId = options.nodeId ?? randomId().slice(0, 12);
    this.#presence = new RedisPresence(this.#commands, this.#subscriber, { keyPrefix, ttlMs: presenceTtlMs, nodeId, onError: this.#onError });
    this.#users = new RedisUsers(this.#commands, { keyPrefix, nodeId, onError: this.#onError });
    this.#control = new RedisControl(this.#commands, this.#subscriber, { keyPrefix, nodeId, onError: this.#onError });
    this.#inquiry = new RedisInquiry(this.#commands, this.#subscriber, { keyPrefix, nodeId, liveNodes: () => this.#presence.liveNodes(), onError: this.#onError });
    this.#nodeId = nodeId;
    this.#subscriptions = new RedisSubscriptions(this.#subscriber, {
      channelPrefix,
      echoTimeoutMs: commandTimeoutMs,
      position: (channel) => this.position(channel),
      history: (channel, query) => this.history(channel, query),
      saw: (id) => this.#streams.saw(id),
      onError: this.#onError,
    });
    // Until the node has read the floor again, it cannot tell whether Redis lost its data: no publishes.
    this.#commands.on('close', () => (this.#streams.floor = undefined));
    this.#subscriber.on('close', () => (this.#subscriberLost = true));
    this.#ready = new Promise((resolve) => {
      let retry: NodeJS.Timeout | undefined;
      const check = () => {
        clearTimeout(retry);
        if (this.#closed || this.#commands.status !== 'ready' || this.#subscriber.status !== 'ready') return;
        this.#subscriptions.whileRestoring(() => this.#restore()).then(resolve, (error) => {
          // Redis answered but refused (out of memory, no permission, a script busy…): both
          // connections stay up, so no 'ready' comes to try again by itself. Until a try goes
          // through, publishes are refused: the subscriptions may not be live, and what they
          // missed would be lost without a word. Then everything is subscribed to afresh.
          this.#onError(error, `redis reconnect: trying again in ${CONNECT_RETRY_MS} ms`);
          this.#streams.floor = undefined;
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
    if (this.#commands.status !== 'ready' || this.#subscriber.status !== 'ready' || this.#streams.floor === undefined) {
      return { healthy: false, detail: `redis unreachable (${this.#commands.status}/${this.#subscriber.status})` };
    }
    return { healthy: true };
  }

  async publish(request: PublishRequest): Promise<Published> {
    const published = await this.#streams.publish(request);
    if (!published.duplicate) await this.#subscriptions.echo(published);
    return published;
  }

  subscribe(pattern: string): Promise<void> {
    return this.#subscriptions.subscribe(pattern);
  }

  unsubscribe(pattern: string): Promise<void> {
    return this.#subscriptions.unsubscribe(pattern);
  }

  history(channel: string, query: HistoryQuery = {}): Promise<HistoryPage> {
    return this.#streams.history(channel, query);
  }

  position(channel: string): Promise<string> {
    return this.#streams.position(channel);
  }

  deleteHistory(channel: string): Promise<void> {
    return this.#streams.deleteHistory(channel);
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
    this.#subscriptions.onMessage(listener);
  }

  onGap(listener: GapListener): void {
    this.#subscriptions.onGap(listener);
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
    this.#subscriptions.close();
    this.#inquiry.close();
    await this.#users.close();
    await this.#presence.close();
    await Promise.all([this.#commands, this.#subscriber].map((connection) => (connection.status === 'ready' ? connection.quit().catch(() => connection.disconnect()) : connection.disconnect())));
  }

  /**
   * Both connections are up: learn the floor and the epoch, then (first time, or after pub/sub
   * was cut, or Redis lost its data) subscribe to everything, say the gaps and catch up
   * (redis-subscriptions.ts). Runs while subscribe() waits (whileRestoring).
   */
  async #restore(): Promise<void> {
    const { floor, lostData } = await this.#streams.readFloor();
    // The first time, nothing catches up afterwards: publishes (which need the floor) wait until
    // every subscription made before Redis came is live, or theirs would miss them.
    if (this.#wasReady) this.#streams.floor = floor;
    const first = !this.#wasReady;
    this.#wasReady = true;
    if (!first && !lostData && !this.#subscriberLost) return this.#livenessWritten();
    this.#subscriberLost = false;
    const catchUps = await this.#subscriptions.resubscribe({ first, lostData, floor });
    // Before the node counts as healthy: a token revoked while it was away (or down) is known first.
    await this.#control.connected(lostData);
    await this.#inquiry.connected();
    this.#streams.floor = floor;
    await Promise.all([this.#livenessWritten(), ...catchUps.map((catchUp) => catchUp())]);
  }

  /** The node's liveness (presence's) first: user records of a node without it are a dead node's. */
  async #livenessWritten(): Promise<void> {
    await this.#presence.connected();
    await this.#users.reconnected();
  }

  /**
   * Runs a Redis operation; any failure of Redis itself becomes HERALD_ERR_ENGINE_UNAVAILABLE.
   * Unless Redis answered with an error, the command went out and its answer was lost (a timeout,
   * a connection cut by a restart): Redis may have run it, so the outcome is unknown.
   */
  async #run<T>(what: string, operation: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new HeraldError('HERALD_ERR_CLOSED', 'the engine is closed');
    if (this.#commands.status !== 'ready' || this.#streams.floor === undefined) {
      throw new HeraldError('HERALD_ERR_ENGINE_UNAVAILABLE', `cannot ${what}: Redis is unreachable`);
    }
    try {
      return await operation();
    } catch (error) {
      throw new HeraldError('HERALD_ERR_ENGINE_UNAVAILABLE', `cannot ${what}: ${(error as Error).message}`, { cause: error, outcomeUnknown: !(error instanceof ReplyError) });
    }
  }
}

/** The options with their defaults, checked: a bad one throws HERALD_ERR_INVALID_OPTION. */
function resolveOptions(options: RedisEngineOptions): Required<Omit<RedisEngineOptions, 'onError' | 'nodeId'>> {
  const defaults = REDIS_ENGINE_DEFAULTS;
  const resolved = {
    url: options.url,
    keyPrefix: options.keyPrefix ?? defaults.keyPrefix,
    historySize: options.historySize ?? defaults.historySize,
    historyTtlMs: options.historyTtlMs ?? defaults.historyTtlMs,
    presenceTtlMs: options.presenceTtlMs ?? defaults.presenceTtlMs,
    commandTimeoutMs: options.commandTimeoutMs ?? defaults.commandTimeoutMs,
  };
  const { historySize, historyTtlMs, presenceTtlMs, commandTimeoutMs } = resolved;
  if (!Number.isInteger(historySize) || historySize < 0) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `historySize must be a non-negative integer, got ${historySize}`);
  }
  for (const [name, value] of Object.entries({ historyTtlMs, presenceTtlMs, commandTimeoutMs })) {
    if (!Number.isFinite(value) || value < 0 || (name !== 'historyTtlMs' && value === 0)) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${name} must be a ${name === 'historyTtlMs' ? 'non-negative' : 'positive'} number of milliseconds, got ${value}`);
    }
  }
  return resolved;
}
