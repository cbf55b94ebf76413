import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { connectionCap } from '../../src/server/connection-cap.js';
import { httpRequest, postJson } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const MAIN = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));

interface Spawned {
  child: ChildProcess;
  logs: any[];
  stderr: () => string;
}

function herald(args: string[], env: Record<string, string> = {}): Spawned {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: any[] = [];
  let text = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
    for (const line of chunk.split('\n')) {
      try {
        logs.push(JSON.parse(line));
      } catch {
        /* not a log line */
      }
    }
  });
  return { child, logs, stderr: () => text };
}

async function listening(spawned: Spawned): Promise<number> {
  const line = await waitFor('the listening log line', () => spawned.logs.find((l) => l.message === 'listening'));
  return line.port;
}

describe('herald serve', () => {
  test('serves Bayeux on the flags given, and on SIGTERM answers held connects then exits 0', async (t) => {
    const spawned = herald(['serve', '--port', '0', '--timeout', '20s', '--max-interval', '15s', '--drain-window', '1s']);
    t.after(() => spawned.child.kill('SIGKILL'));
    const port = await listening(spawned);
    const client = new RawBayeux(port, '/cometd');
    const reply = await client.handshake();
    assert.deepEqual(reply.advice, { reconnect: 'retry', interval: 0, timeout: 20_000, maxInterval: 15_000 });
    await client.connect({ advice: { timeout: 0 } });
    const held = client.connect();
    await waitFor('the connect to be held', async () => (await httpRequest(port, { path: '/health' })).json().heldConnects === 1);
    const exited = once(spawned.child, 'exit');
    spawned.child.kill('SIGTERM');
    const res = await withTimeout('the held connect to be answered', held, 5000);
    assert.equal(res.status, 200);
    const [connect] = res.json();
    assert.equal(connect.successful, false);
    assert.equal(connect.error, '402:shutdown:session_closed');
    assert.deepEqual(connect.advice, { reconnect: 'handshake', interval: 0 });
    const [code] = await withTimeout('the process to exit', exited, 8000);
    assert.equal(code, 0);
    assert.ok(spawned.logs.some((l) => l.message === 'draining' && l.signal === 'SIGTERM'));
  });

  test('reads settings from the environment, and flags win over it', async (t) => {
    const spawned = herald(['serve', '--timeout', '7s'], { HERALD_PORT: '0', HERALD_TIMEOUT: '3s', HERALD_PATHS: '/push', HERALD_LOG_LEVEL: 'info' });
    t.after(() => spawned.child.kill('SIGKILL'));
    const port = await listening(spawned);
    const res = await postJson(port, '/push', [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]);
    assert.equal(res.json()[0].advice.timeout, 7000);
    assert.equal((await postJson(port, '/bayeux', [])).status, 404);
    const exited = once(spawned.child, 'exit');
    spawned.child.kill('SIGINT');
    assert.equal((await withTimeout('exit', exited, 8000))[0], 0);
  });

  test('--config: takes its settings from a YAML file, under the environment and flags', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-serve-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'herald.yaml');
    writeFileSync(file, ['port: 0', 'path: [/push]', 'timeout: 12s', 'max-interval: 14000', 'interval: 5s', 'log-level: info', ''].join('\n'));
    const spawned = herald(['serve', '--config', file, '--interval', '0'], { HERALD_MAX_INTERVAL: '16s', HERALD_TIMEOUT: '', HERALD_CONFIG: '' });
    t.after(() => spawned.child.kill('SIGKILL'));
    const port = await listening(spawned);
    const res = await postJson(port, '/push', [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]);
    assert.deepEqual(res.json()[0].advice, { reconnect: 'retry', interval: 0, timeout: 12_000, maxInterval: 16_000 });
    assert.equal((await postJson(port, '/bayeux', [])).status, 404);
    const exited = once(spawned.child, 'exit');
    spawned.child.kill('SIGTERM');
    assert.equal((await withTimeout('exit', exited, 8000))[0], 0);
  });

  test('the start lines: a password in the engine URL never reaches the logs, and the connection limit says where it came from', async (t) => {
    // Nothing listens on port 1: the engine's connection errors are logged too.
    const spawned = herald(['serve', '--port', '0', '--engine', 'redis://:p@ss-w0rd@127.0.0.1:1/0']);
    t.after(() => spawned.child.kill('SIGKILL'));
    const line = await waitFor('the listening log line', () => spawned.logs.find((l) => l.message === 'listening'));
    assert.equal(line.engine, 'redis://:***@127.0.0.1:1/0');
    await waitFor('a Redis connection error logged', () => spawned.logs.some((l) => l.message === 'redis'));
    // The connection limit in force, and where it came from, is said at start.
    const cap = connectionCap();
    await waitFor('the connection limit logged', () => spawned.logs.find((l) => l.message === 'connection limit'));
    assert.deepEqual(
      spawned.logs.find((l) => l.message === 'connection limit'),
      { ...spawned.logs.find((l) => l.message === 'connection limit'), maxConnections: cap.connections, from: 'open-files limit', openFiles: cap.openFiles, reserved: cap.reserved },
    );
    for (const part of ['p@ss', 'ss-w0rd', 'w0rd']) assert.ok(!spawned.stderr().includes(part), `${part} in ${spawned.stderr()}`);
  });

  test('refuses a bad value naming the flag and its variable, exit code 2', async () => {
    for (const [args, env, pattern] of [
      [['serve', '--timeout', 'soon'], {}, /--timeout \(HERALD_TIMEOUT\): expected a duration/],
      [['serve'], { HERALD_PORT: '99999' }, /--port \(HERALD_PORT\): expected a port number/],
      [['serve', '--log-level', 'loud'], {}, /--log-level/],
      [['serve', '--no-such-flag'], {}, /no-such-flag/],
      [['frobnicate'], {}, /unknown command "frobnicate"/],
    ] as const) {
      const spawned = herald([...args], { ...env });
      const [code] = await withTimeout('exit', once(spawned.child, 'exit'), 8000);
      assert.equal(code, 2, args.join(' '));
      assert.match(spawned.stderr(), pattern);
    }
  });

  test('prints usage with every flag', async () => {
    const child = spawn(process.execPath, [MAIN, 'serve', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
    for (const flag of ['--port', '--host', '--path', '--timeout', '--max-interval', '--allowed-origins', '--log-level', '--max-body']) {
      assert.ok(out.includes(flag), flag);
    }
  });
});
