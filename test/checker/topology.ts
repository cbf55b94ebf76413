/**
 * @module
 * Where a checker run happens, and the faults it can suffer there: one Herald in this process on
 * the memory engine, or three `herald serve` processes on a Redis of the run's own. Clients reach
 * Herald only through fault proxies; each fault is done, lasts, and is undone by `inject`.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createHerald } from '../../src/server/create-herald.js';
import type { Herald, HeraldOptions } from '../../src/server/create-herald.js';
import { startNode } from '../helpers/cluster.js';
import type { ClusterNode } from '../helpers/cluster.js';
import { freePort } from '../helpers/redis.js';
import { FaultProxy } from './proxy.js';
import { APP_BODY, APP_STATUS, JWT_SECRET } from './recorder.js';
import type { PlannedFault } from './schedule.js';

type Hookable = { after(fn: () => unknown): void };

export interface Topology {
  readonly proxies: readonly FaultProxy[];
  /** Proxies to the same nodes that no fault touches: for doors shielded from a known-open fault. */
  readonly calm: readonly FaultProxy[];
  /** The application's route answering through `herald.piggyback` on every node (undefined: the nodes have none). */
  readonly appPath?: string;
  /** `herald.publish` of an in-process Herald on the run's engine. */
  readonly publish: (channel: string, data: unknown) => Promise<{ id: string }>;
  /** Does `fault`, waits its duration, undoes it; returns what it did, for the history. */
  inject(fault: PlannedFault, random: () => number): Promise<string>;
}

/** Settings that make faults bite within a short run: small queues, short holds. */
const HOLD_MS = 4000;
const MAX_QUEUE = 64;
const APP_PATH = '/ck-app';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function proxyFaults(proxies: readonly FaultProxy[], fault: PlannedFault, random: () => number): Promise<string> | undefined {
  switch (fault.kind) {
    case 'cut-all':
      return Promise.resolve(`cut ${proxies.reduce((n, p) => n + p.cut(1, random), 0)} connections`);
    case 'cut-some':
      return Promise.resolve(`cut ${proxies.reduce((n, p) => n + p.cut(fault.fraction, random), 0)} connections (${Math.round(fault.fraction * 100)}%)`);
    case 'stall': {
      const stalled = proxies.reduce((n, p) => n + p.stall(fault.fraction, fault.durationMs, random), 0);
      return sleep(fault.durationMs).then(() => `stalled ${stalled} readers for ${fault.durationMs} ms`);
    }
    case 'token-expiry':
      // The tokens were minted to run out at this moment (TokenMint): nothing to do but wait.
      return Promise.resolve('tokens handed out before now expire');
    default:
      return undefined;
  }
}

/** How the nodes are set up: tokens on, a history that forgets soon, sessions that expire soon. */
export interface TopologyOptions {
  readonly tokens: boolean;
  readonly historyTtlMs?: number | undefined;
  /** One node only: a Bayeux session with no connect for this long is expired (a long stall does it). */
  readonly maxIntervalMs?: number | undefined;
}

export async function oneNode(t: Hookable, options: TopologyOptions): Promise<Topology> {
  const config: HeraldOptions = {
    historySize: 5000,
    ...(options.historyTtlMs === undefined ? {} : { historyTtlMs: options.historyTtlMs }),
    ...(options.maxIntervalMs === undefined ? {} : { maxIntervalMs: options.maxIntervalMs }),
    timeoutMs: HOLD_MS,
    maxQueue: MAX_QUEUE,
    maxBufferedBytes: 64 * 1024,
    maxSessionsPerAddress: 0,
    maxSessionsPerBrowser: -1,
    maxMessageRate: 0,
    maxConnections: 0,
    ...(options.tokens ? { jwtSecret: JWT_SECRET } : {}),
  };
  const herald: Herald = createHerald(config);
  // The server herald.listen makes, with an application route of its own beside Herald's paths:
  // a form's validation, whose answer carries the session's queued messages (issue 19.3).
  const server = createServer({ noDelay: true, requestTimeout: 30_000, headersTimeout: 30_000, connectionsCheckingInterval: 1000 }, (req, res) => {
    if (req.url !== APP_PATH || req.method !== 'POST') return void res.writeHead(404).end();
    req.resume();
    req.on('end', () => {
      res.statusCode = APP_STATUS;
      herald.piggyback(req, res, APP_BODY);
    });
  });
  herald.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const proxy = new FaultProxy(() => [port]);
  const calm = new FaultProxy(() => [port]);
  await proxy.listen();
  await calm.listen();
  t.after(async () => {
    await proxy.close();
    await calm.close();
    await herald.close();
    server.closeAllConnections();
    server.close();
  });
  return {
    proxies: [proxy],
    calm: [calm],
    appPath: APP_PATH,
    publish: (channel, data) => herald.publish(channel, data),
    async inject(fault, random) {
      const done = proxyFaults([proxy], fault, random);
      if (done === undefined) throw new Error(`fault ${fault.kind} needs a cluster`);
      return done;
    },
  };
}

/** A redis-server of the run's own that can restart with its data (SHUTDOWN SAVE) or without it (kill -9). */
class RedisControl {
  #child: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'herald-checker-'));

  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(process.env.REDIS_SERVER ?? 'redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--dbfilename', 'dump.rdb',
    ], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.#child = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10_000);
      child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`redis-server exited with ${code}:\n${output}`))));
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) (clearTimeout(timer), resolve());
      });
    });
    child.removeAllListeners('exit');
    child.stdout!.resume();
  }

  async admin<T>(...args: (string | number)[]): Promise<T> {
    const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return (await client.call(String(args[0]), ...args.slice(1))) as T;
    } finally {
      client.disconnect();
    }
  }

  async stop(keepData: boolean): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    if (keepData) await this.admin('SHUTDOWN', 'SAVE').catch(() => undefined);
    else {
      child.kill('SIGKILL');
      rmSync(join(this.dir, 'dump.rdb'), { force: true });
    }
    await exited;
  }

  async close(): Promise<void> {
    await this.stop(false);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const NODES = 3;

/** XSETID every Herald stream `ms` ahead of its last id; returns how many. */
async function moveIdsAhead(redis: RedisControl, ms: number): Promise<number> {
  const keys = await redis.admin<string[]>('KEYS', 'herald:h:*').catch(() => [] as string[]);
  let moved = 0;
  for (const key of keys) {
    const info = await redis.admin<unknown[]>('XINFO', 'STREAM', key).catch(() => undefined);
    const last = info === undefined ? undefined : String(info[info.indexOf('last-generated-id') + 1]);
    if (last === undefined || !last.includes('-')) continue;
    const ok = await redis.admin('XSETID', key, `${Number(last.split('-')[0]) + ms}-0`).then(() => true, () => false);
    if (ok) moved++;
  }
  return moved;
}

export async function threeNodes(t: Hookable, options: TopologyOptions): Promise<Topology> {
  const redis = new RedisControl(await freePort());
  await redis.start();
  t.after(() => redis.close());
  const args = [
    '--history-size', '5000', '--max-sessions-per-ip', '0', '--max-connections', '0', '--timeout', `${HOLD_MS}ms`, '--max-rate', '0',
    '--max-queue', String(MAX_QUEUE), '--drain-window', '500ms', '--shutdown-grace', '2s', '--log-level', 'info',
    ...(options.tokens ? ['--jwt-secret', JWT_SECRET] : []),
    ...(options.historyTtlMs === undefined ? [] : ['--history-ttl', `${options.historyTtlMs}ms`]),
  ];
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < NODES; i++) nodes.push(await startNode(t, redis.url, args));
  const proxies = nodes.map((_, i) => new FaultProxy(() => nodes.map((node) => node.port), i));
  const calm = nodes.map((_, i) => new FaultProxy(() => nodes.map((node) => node.port), i));
  for (const proxy of [...proxies, ...calm]) await proxy.listen();
  // The API door: a Herald in this process on the same Redis, used only to publish.
  const api = createHerald({ engine: redis.url, historySize: 5000, ...(options.historyTtlMs === undefined ? {} : { historyTtlMs: options.historyTtlMs }) });
  t.after(async () => {
    for (const proxy of [...proxies, ...calm]) await proxy.close();
    await api.close();
  });

  const restart = async (index: number) => {
    nodes[index] = await startNode(t, redis.url, args);
  };
  return {
    proxies,
    calm,
    publish: (channel, data) => api.publish(channel, data),
    async inject(fault, random) {
      const done = proxyFaults(proxies, fault, random);
      if (done !== undefined) return done;
      const index = fault.target % NODES;
      switch (fault.kind) {
        case 'kill-node': {
          await nodes[index]!.kill();
          await sleep(fault.durationMs);
          await restart(index);
          return `kill -9 node ${index}, restarted after ${fault.durationMs} ms`;
        }
        case 'drain-node': {
          const child = nodes[index]!.child;
          const exited = once(child, 'exit');
          child.kill('SIGTERM');
          await exited;
          await sleep(fault.durationMs);
          await restart(index);
          return `SIGTERM node ${index} (drained), restarted after ${fault.durationMs} ms`;
        }
        case 'cut-pubsub': {
          // Again and again while it lasts: each node resubscribes and catches up, over and over,
          // while channels gain and lose interest (a channel with none delivered yet, patterns).
          const until = Date.now() + fault.durationMs;
          let cuts = 0;
          let killed = 0;
          do {
            killed += await redis.admin<number>('CLIENT', 'KILL', 'TYPE', 'pubsub').catch(() => 0);
            cuts++;
            await sleep(100 + random() * 400);
          } while (Date.now() < until);
          return `CLIENT KILL TYPE pubsub ${cuts} times over ${fault.durationMs} ms: ${killed} connections`;
        }
        case 'redis-restart-data':
        case 'redis-restart-empty': {
          const keep = fault.kind === 'redis-restart-data';
          // Emptied, Redis's clock is also behind the ids it issued (a restart on a slower clock, a
          // replica promoted): the streams' ids are moved ahead first, so the new data set's ids
          // sort below ones already delivered unless the engine keeps them going up.
          const ahead = keep ? 0 : await moveIdsAhead(redis, 60_000);
          await redis.stop(keep);
          await sleep(fault.durationMs);
          await redis.start();
          return `Redis ${keep ? 'SHUTDOWN SAVE' : `kill -9 (${ahead} streams' ids moved 60 s ahead first)`}, back ${keep ? 'with its data' : 'empty'} after ${fault.durationMs} ms`;
        }
        case 'redis-pause': {
          await redis.admin('CLIENT', 'PAUSE', fault.durationMs, 'ALL');
          await sleep(fault.durationMs);
          return `CLIENT PAUSE ${fault.durationMs} ALL`;
        }
        default:
          throw new Error(`unknown fault ${fault.kind}`);
      }
    },
  };
}
