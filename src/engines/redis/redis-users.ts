/**
 * @module
 * Who is online, across the cluster (Engine.userConnected/userDisconnected/sweepUsers): per user, a
 * Redis record of node → connections, changed by scripts (user-scripts.ts) so that each change to
 * online or offline is answered to one node. The node keeps its own part in memory too: while
 * Redis is out of reach (or before the node's liveness is written) only that changes, and the
 * node writes it whole when it is back — users that came online meanwhile are found then and
 * told by the next sweep; users that went are left alone to leave. A node that another took for
 * dead (its liveness lapsed) writes its part again on its next sweep.
 */
import type { Redis } from 'ioredis';
import type { UserSweep } from '../../core/engine.js';
import { USER_CONNECTED_SCRIPT, USER_DISCONNECTED_SCRIPT, USER_RESTORE_SCRIPT, USER_SWEEP_SCRIPT } from './user-scripts.js';

export interface RedisUsersOptions {
  readonly keyPrefix: string;
  readonly nodeId: string;
  readonly onError: (error: unknown, context: string) => void;
}

/** Users settled per sweep at most: a sweep is one script, and Redis serves nobody else meanwhile. */
const MAX_SETTLED_PER_SWEEP = 1000;

type Scripts = {
  heraldUserConnected(...args: (string | number)[]): Promise<number>;
  heraldUserDisconnected(...args: (string | number)[]): Promise<number>;
  heraldUserSweep(...args: (string | number)[]): Promise<[string[], number]>;
  heraldUserRestore(...args: (string | number)[]): Promise<string[]>;
};

export class RedisUsers {
  /** This node's connections per user. */
  readonly #local = new Map<string, number>();
  /** The node's liveness is written and its part restored: its scripts may run. */
  #live = false;
  /** Users a restore found online: told by the next sweep. */
  #found: string[] = [];

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisUsersOptions,
  ) {
    redis.defineCommand('heraldUserConnected', { numberOfKeys: 0, lua: USER_CONNECTED_SCRIPT });
    redis.defineCommand('heraldUserDisconnected', { numberOfKeys: 0, lua: USER_DISCONNECTED_SCRIPT });
    redis.defineCommand('heraldUserSweep', { numberOfKeys: 0, lua: USER_SWEEP_SCRIPT });
    redis.defineCommand('heraldUserRestore', { numberOfKeys: 0, lua: USER_RESTORE_SCRIPT });
  }

  async connected(user: string): Promise<boolean> {
    const count = (this.#local.get(user) ?? 0) + 1;
    this.#local.set(user, count);
    if (!this.#ready) return false;
    return (await this.#scripts.heraldUserConnected(this.options.keyPrefix, this.options.nodeId, user, count)) === 1;
  }

  async disconnected(user: string): Promise<boolean> {
    const count = (this.#local.get(user) ?? 0) - 1;
    if (count < 0) return false;
    if (count === 0) this.#local.delete(user);
    else this.#local.set(user, count);
    if (!this.#ready) return false;
    return (await this.#scripts.heraldUserDisconnected(this.options.keyPrefix, this.options.nodeId, user, count)) === 1;
  }

  async sweep(graceMs: number): Promise<UserSweep> {
    if (!this.#ready) return { offline: [], online: [] };
    const [offline, forgotten] = await this.#scripts.heraldUserSweep(this.options.keyPrefix, this.options.nodeId, Math.max(0, Math.round(graceMs)), MAX_SETTLED_PER_SWEEP);
    if (forgotten === 1 && this.#local.size > 0) await this.#restore();
    const online = this.#found;
    this.#found = [];
    return { offline, online };
  }

  /** Redis is (again) reachable and the node's liveness written: the node's part is written whole. */
  async reconnected(): Promise<void> {
    await this.#restore();
    this.#live = true;
  }

  /** The node goes: its users left without a connection elsewhere begin leaving (another node's sweep settles them). */
  async close(): Promise<void> {
    const live = this.#ready;
    this.#live = false;
    this.#local.clear();
    if (!live) return;
    await this.#scripts.heraldUserRestore(this.options.keyPrefix, this.options.nodeId).catch((error: unknown) => this.options.onError(error, 'users goodbye'));
  }

  async #restore(): Promise<void> {
    const online = await this.#scripts.heraldUserRestore(this.options.keyPrefix, this.options.nodeId, ...[...this.#local].flat());
    this.#found.push(...online);
  }

  get #ready(): boolean {
    return this.#live && this.redis.status === 'ready';
  }

  get #scripts(): Scripts {
    return this.redis as unknown as Scripts;
  }
}
