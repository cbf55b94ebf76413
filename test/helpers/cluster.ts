/**
 * A cluster on one machine: `herald serve` processes joined through Redis, and a sticky TCP load
 * balancer in front of them that fails over to the next node when its node refuses connections,
 * as nginx `ip_hash` with `max_fails` would.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { onCleanup } from './cleanup.js';
import { waitFor, withTimeout } from './wait.js';
import { httpRequest } from './http.js';

const MAIN = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));

type Hookable = { after(fn: () => unknown): void };

export interface ClusterNode {
  readonly port: number;
  readonly child: ChildProcess;
  /** The node's log lines so far, as logged (JSON). */
  readonly logs: Record<string, unknown>[];
  /** kill -9: no drain, no goodbye. */
  kill(): Promise<void>;
}

/** Starts `herald serve --engine <redis>` on a free port and waits until it is healthy. */
export async function startNode(t: Hookable, redisUrl: string, args: readonly string[] = []): Promise<ClusterNode> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--port', '0', '--engine', redisUrl, '--demo', 'off', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let pending = '';
  let port: number | undefined;
  const logs: Record<string, unknown>[] = [];
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    let end: number;
    while ((end = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      try {
        const entry = JSON.parse(line);
        logs.push(entry);
        if (entry.message === 'listening') port = entry.port;
      } catch {
        /* not a log line */
      }
    }
  });
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  };
  onCleanup(t, kill);
  const listening = await waitFor('the node listens', () => port);
  await waitFor('the node is ready', async () => (await httpRequest(listening, { path: '/ready' }).catch(() => undefined))?.status === 200, 15_000);
  return { port: listening, child, logs, kill };
}

/**
 * A TCP balancer that sends every connection to `ports[preferred]` while it accepts them, else to
 * the next port that does. Returns its own port.
 */
export async function startBalancer(t: Hookable, ports: readonly number[], preferred: number): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    client.pause();
    const tryFrom = (attempt: number) => {
      if (attempt >= ports.length) {
        client.destroy();
        return;
      }
      const upstream = connect(ports[(preferred + attempt) % ports.length]!, '127.0.0.1');
      let connected = false;
      upstream.on('error', () => {
        if (connected) client.destroy();
        else tryFrom(attempt + 1);
      });
      upstream.once('connect', () => {
        connected = true;
        sockets.add(upstream);
        upstream.once('close', () => {
          sockets.delete(upstream);
          client.destroy();
        });
        client.once('close', () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    tryFrom(0);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(t, async () => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

/**
 * A Herald node (createHerald over a RedisEngine named `nodeId`) in a process of its own, so that
 * it can die for real: `kill()` is kill -9, no goodbye. `options` must be JSON.
 */
export async function startChildNode(t: Hookable, redisUrl: string, options: Record<string, unknown>, engine: { presenceTtlMs: number; nodeId: string }): Promise<{ port: number; kill(): void }> {
  const heraldModule = new URL('../../src/server/create-herald.js', import.meta.url).href;
  const engineModule = new URL('../../src/engines/redis/redis-engine.js', import.meta.url).href;
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    const { createHerald } = await import(${JSON.stringify(heraldModule)});
    const { RedisEngine } = await import(${JSON.stringify(engineModule)});
    const engine = new RedisEngine({ url: ${JSON.stringify(redisUrl)}, ...${JSON.stringify(engine)} });
    await engine.ready();
    const herald = createHerald({ ...${JSON.stringify(options)}, engine });
    const { port } = await herald.listen(0, '127.0.0.1');
    console.log(port);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  onCleanup(t, () => child.kill('SIGKILL'));
  const [chunk] = (await withTimeout('the child node listens', once(child.stdout!, 'data'))) as [Buffer];
  return { port: Number(chunk.toString().trim()), kill: () => child.kill('SIGKILL') };
}
