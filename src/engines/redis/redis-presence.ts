/**
 * @module
 * Presence across the cluster: one Redis hash per channel (member → "<node> <joinedAt>") and one
 * liveness key per node, renewed every third of the TTL. A node that dies stops renewing; its
 * members are dropped the next time anyone reads the channel, and a channel's hash expires
 * altogether when no live node renews it. The node keeps its own members in memory too, so it can
 * write them again when Redis comes back empty. The live nodes are also listed in one sorted set
 * (`<prefix>nodes`, each scored by when its liveness lapses), for those who must ask them all.
 */
import type { Redis } from 'ioredis';
import type { PresenceMember } from '../../core/engine.js';
import { PRESENCE_SCRIPT } from './scripts.js';

export interface RedisPresenceOptions {
  readonly keyPrefix: string;
  readonly ttlMs: number;
  readonly nodeId: string;
  readonly onError: (error: unknown, context: string) => void;
}

export class RedisPresence {
  /** This node's members: channel → member → joinedAt. */
  readonly #local = new Map<string, Map<string, number>>();
  readonly #nodeKey: string;
  readonly #nodesKey: string;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisPresenceOptions,
  ) {
    this.#nodeKey = `${options.keyPrefix}n:${options.nodeId}`;
    this.#nodesKey = `${options.keyPrefix}nodes`;
    redis.defineCommand('heraldPresence', { numberOfKeys: 1, lua: PRESENCE_SCRIPT });
  }

  async join(channel: string, member: string): Promise<void> {
    let members = this.#local.get(channel);
    if (members === undefined) this.#local.set(channel, (members = new Map()));
    if (members.has(member)) return;
    const joinedAt = Date.now();
    members.set(member, joinedAt);
    // Written again on reconnect: nothing to do while Redis is away.
    if (this.redis.status !== 'ready') return;
    await this.redis.multi().hset(this.#key(channel), member, `${this.options.nodeId} ${joinedAt}`).pexpire(this.#key(channel), this.#hashTtlMs).exec();
  }

  async leave(channel: string, member: string): Promise<void> {
    const members = this.#local.get(channel);
    if (members?.delete(member) !== true) return;
    if (members.size === 0) this.#local.delete(channel);
    if (this.redis.status !== 'ready') return;
    await this.redis.hdel(this.#key(channel), member);
  }

  async members(channel: string): Promise<PresenceMember[]> {
    const flat = (await (this.redis as unknown as { heraldPresence(key: string, nodePrefix: string): Promise<string[]> }).heraldPresence(
      this.#key(channel),
      `${this.options.keyPrefix}n:`,
    )) as string[];
    const members: PresenceMember[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const [node, joinedAt] = flat[i + 1]!.split(' ');
      members.push({ id: flat[i]!, node: node!, joinedAt: Number(joinedAt) });
    }
    return members;
  }

  /** The nodes whose liveness has not lapsed (this one included once it is connected). */
  async liveNodes(): Promise<string[]> {
    return this.redis.zrangebyscore(this.#nodesKey, Date.now(), '+inf');
  }

  /** Redis is (again) reachable: announce the node and write its members, then keep them alive. */
  async connected(): Promise<void> {
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
    for (const [channel, members] of this.#local) goodbye.hdel(this.#key(channel), ...members.keys());
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
        batch.hset(this.#key(channel), ...[...members].flatMap(([member, joinedAt]) => [member, `${this.options.nodeId} ${joinedAt}`]));
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
