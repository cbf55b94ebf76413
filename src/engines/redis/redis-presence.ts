/**
 * @module
 * Presence across the cluster: one Redis hash per channel (session → "<node> <JSON of joinedAt,
 * user, info>") and one
 * liveness key per node, renewed every third of the TTL. A node that dies stops renewing; its
 * members are dropped the next time anyone reads the channel, and a channel's hash expires
 * altogether when no live node renews it. The node keeps its own members in memory too, so it can
 * write them again when Redis comes back empty. The live nodes are also listed in one sorted set
 * (`<prefix>nodes`, each scored by when its liveness lapses), for those who must ask them all.
 * Each change is announced on `<prefix>presence` (the channel's name), so every node's presence
 * listener reads the channel again.
 */
import type { Redis } from 'ioredis';
import type { PresenceEntry, PresenceJoin, PresenceListener } from '../../core/engine.js';
import { PRESENCE_SCRIPT } from './scripts.js';

export interface RedisPresenceOptions {
  readonly keyPrefix: string;
  readonly ttlMs: number;
  readonly nodeId: string;
  readonly onError: (error: unknown, context: string) => void;
}

export class RedisPresence {
  /** This node's entries: channel → session → what is written for it. */
  readonly #local = new Map<string, Map<string, string>>();
  readonly #nodeKey: string;
  readonly #nodesKey: string;
  readonly #announce: string;
  #heartbeat: NodeJS.Timeout | undefined;
  #listener: PresenceListener | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly options: RedisPresenceOptions,
  ) {
    this.#nodeKey = `${options.keyPrefix}n:${options.nodeId}`;
    this.#nodesKey = `${options.keyPrefix}nodes`;
    this.#announce = `${options.keyPrefix}presence`;
    redis.defineCommand('heraldPresence', { numberOfKeys: 1, lua: PRESENCE_SCRIPT });
    subscriber.on('message', (redisChannel: string, channel: string) => {
      if (redisChannel === this.#announce) this.#listener?.(channel);
    });
  }

  onPresence(listener: PresenceListener): void {
    this.#listener = listener;
  }

  async join(channel: string, entry: PresenceJoin): Promise<void> {
    let entries = this.#local.get(channel);
    if (entries === undefined) this.#local.set(channel, (entries = new Map()));
    if (entries.has(entry.session)) return;
    const { session, ...shown } = entry;
    const value = `${this.options.nodeId} ${JSON.stringify({ ...shown, joinedAt: Date.now() })}`;
    entries.set(session, value);
    // Written again on reconnect: nothing to do while Redis is away.
    if (this.redis.status !== 'ready') return;
    await this.redis.multi().hset(this.#key(channel), session, value).pexpire(this.#key(channel), this.#hashTtlMs).publish(this.#announce, channel).exec();
  }

  async leave(channel: string, session: string): Promise<void> {
    const entries = this.#local.get(channel);
    if (entries?.delete(session) !== true) return;
    if (entries.size === 0) this.#local.delete(channel);
    if (this.redis.status !== 'ready') return;
    await this.redis.multi().hdel(this.#key(channel), session).publish(this.#announce, channel).exec();
  }

  async members(channel: string): Promise<PresenceEntry[]> {
    const flat = (await (this.redis as unknown as { heraldPresence(key: string, nodePrefix: string): Promise<string[]> }).heraldPresence(
      this.#key(channel),
      `${this.options.keyPrefix}n:`,
    )) as string[];
    const entries: PresenceEntry[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const value = flat[i + 1]!;
      const space = value.indexOf(' ');
      try {
        const { user, anonymous, info, joinedAt } = JSON.parse(value.slice(space + 1)) as Omit<PresenceEntry, 'session' | 'node'>;
        entries.push({ session: flat[i]!, user, ...(anonymous === true ? { anonymous } : {}), ...(info === undefined ? {} : { info }), node: value.slice(0, space), joinedAt });
      } catch {
        // Written by an older Herald (`<node> <joinedAt>`): gone at its node's next rewrite.
        continue;
      }
    }
    return entries;
  }

  /** The nodes whose liveness has not lapsed (this one included once it is connected). */
  async liveNodes(): Promise<string[]> {
    return this.redis.zrangebyscore(this.#nodesKey, Date.now(), '+inf');
  }

  /** Redis is (again) reachable: announce the node and write its members, then keep them alive. */
  async connected(): Promise<void> {
    await this.subscriber.subscribe(this.#announce);
    await this.#renew(true);
    this.#heartbeat ??= setInterval(() => {
      this.#renew(false).catch((error) => this.options.onError(error, 'presence heartbeat'));
    }, Math.max(1, Math.floor(this.options.ttlMs / 3)));
    this.#heartbeat.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    if (this.redis.status !== 'ready') return;
    const goodbye = this.redis.multi().del(this.#nodeKey).zrem(this.#nodesKey, this.options.nodeId);
    for (const [channel, members] of this.#local) goodbye.hdel(this.#key(channel), ...members.keys()).publish(this.#announce, channel);
    this.#local.clear();
    await goodbye.exec().catch((error) => this.options.onError(error, 'presence goodbye'));
  }

  /** Renews the node's liveness and its channels' hashes; after a reconnect, rewrites its members. */
  async #renew(rewrite: boolean): Promise<void> {
    if (this.redis.status !== 'ready') return;
    const now = Date.now();
    const batch = this.redis
      .multi()
      .set(this.#nodeKey, '1', 'PX', this.options.ttlMs)
      .zadd(this.#nodesKey, now + this.options.ttlMs, this.options.nodeId)
      // Nodes that died: gone once their liveness lapsed a whole TTL ago (clocks may differ a little).
      .zremrangebyscore(this.#nodesKey, '-inf', now - this.options.ttlMs);
    for (const [channel, members] of this.#local) {
      if (rewrite && members.size > 0) {
        batch.hset(this.#key(channel), ...[...members].flat());
        batch.publish(this.#announce, channel);
      }
      batch.pexpire(this.#key(channel), this.#hashTtlMs);
    }
    await batch.exec();
  }

  /** A hash outlives the node TTL a little, so a renewal never races its expiry. */
  get #hashTtlMs(): number {
    return this.options.ttlMs * 2;
  }

  #key(channel: string): string {
    return `${this.options.keyPrefix}p:${channel}`;
  }
}
