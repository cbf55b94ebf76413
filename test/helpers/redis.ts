/**
 * A real redis-server of the test's own on a free loopback port, without persistence (but for
 * `restartWithData`), stopped after the test. `scripts/test.sh` installs Debian's redis-server when it is missing.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { AddressInfo } from 'node:net';
import { onCleanup } from './cleanup.js';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Stops the server (SIGKILL: as a crash would); its data is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  /** Saves its data, stops it (SHUTDOWN SAVE) and starts it again with that data, as a planned restart does. */
  restartWithData(): Promise<void>;
}

const READY = 'Ready to accept connections';

export async function startRedis(t: { after(fn: () => unknown): void }): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'herald-redis-'));

  async function start(): Promise<void> {
    const started = spawn(process.env.REDIS_SERVER ?? 'redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'notice', '--dir', dir,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000);
      started.once('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`cannot run redis-server (scripts/test.sh installs it): ${error.message}`));
      });
      started.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${output}`));
      });
      started.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes(READY)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    started.stdout!.resume();
    started.stderr!.resume();
  }

  async function stop(): Promise<void> {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, 'exit');
    running.kill('SIGKILL');
    await exited;
    rmSync(join(dir, 'dump.rdb'), { force: true });
  }

  async function restartWithData(): Promise<void> {
    const running = child;
    if (running === undefined) throw new Error('redis-server is not running');
    const exited = once(running, 'exit');
    const admin = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 0 });
    admin.on('error', () => undefined);
    await admin.call('SHUTDOWN', 'SAVE').catch(() => undefined);
    admin.disconnect();
    await exited;
    child = undefined;
    await start();
  }

  await start();
  onCleanup(t, async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { port, url: `redis://127.0.0.1:${port}`, stop, start, restartWithData };
}

/** A port nothing listens on now (the kernel picks it; a race with another process is unlikely). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Kills Redis's pub/sub connections, as a network blip on them would; returns how many. */
export async function killPubSub(redis: TestRedis): Promise<number> {
  const admin = new Redis(redis.url);
  try {
    return Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
  } finally {
    admin.disconnect();
  }
}
