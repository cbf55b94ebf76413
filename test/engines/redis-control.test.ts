/**
 * The Redis engine's control plane (redis-control.ts), engine to engine on a real Redis: commands
 * reach the other nodes and not the sender, revocations merge (the wider wins), expire at their
 * `until`, and are handed over again after the pub/sub connection was cut, so a node that missed
 * one meanwhile still learns it.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import type { ControlCommand, Revocation } from '../../src/core/control.js';
import { RedisEngine } from '../../src/engines/redis/redis-engine.js';
import { killPubSub, startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const redis = await startRedis({ after: (fn) => after(fn) });
let spaces = 0;

async function pair(t: { after(fn: () => unknown): void }) {
  const keyPrefix = `ctl${++spaces}:`;
  const heard: ControlCommand[][] = [[], []];
  const engines = [0, 1].map((i) => {
    const engine = new RedisEngine({ url: redis.url, keyPrefix });
    engine.onControl((command) => heard[i]!.push(command));
    t.after(() => engine.close());
    return engine;
  }) as [RedisEngine, RedisEngine];
  await Promise.all(engines.map((engine) => engine.ready()));
  return { engines, heard, keyPrefix };
}

const revocations = (commands: ControlCommand[]): Revocation[] => commands.flatMap((command) => (command.kind === 'revoke' ? [command.revocation] : []));

test('a command reaches the other node, not its sender', async (t) => {
  const { engines, heard } = await pair(t);
  const command: ControlCommand = { kind: 'disconnect', target: { user: '42' }, reconnect: false, note: 'spam' };
  await engines[0].broadcast(command);
  await waitFor('the other node', () => heard[1]!.length === 1);
  assert.deepEqual(heard[1], [command]);
  // A later command from the other side shows the first never came back to its sender.
  await engines[1].broadcast({ kind: 'disconnect', target: { session: 'x' }, reconnect: true });
  await waitFor('the first node', () => heard[0]!.length === 1);
  assert.deepEqual(heard[0], [{ kind: 'disconnect', target: { session: 'x' }, reconnect: true }]);
});

test('revocations of one subject merge, the wider winning, and the key expires at until', async (t) => {
  const { engines, heard, keyPrefix } = await pair(t);
  const now = Date.now();
  const first = await engines[0].revoke({ kind: 'sub', sub: 's', before: now, until: now + 60_000 });
  assert.deepEqual(first, { kind: 'sub', sub: 's', before: now, until: now + 60_000 });
  const merged = await engines[1].revoke({ kind: 'sub', sub: 's', before: now - 5_000, until: now + 120_000 });
  assert.deepEqual(merged, { kind: 'sub', sub: 's', before: now, until: now + 120_000 }, 'the later before, the later until');
  await waitFor('each node hears the other', () => heard[0]!.length === 1 && heard[1]!.length === 1);
  assert.deepEqual(revocations(heard[0]!), [merged]);
  const admin = new Redis(redis.url);
  t.after(() => admin.disconnect());
  const ttl = await admin.pttl(`${keyPrefix}revoked:sub:s`);
  assert.ok(ttl > 110_000 && ttl <= 120_000, `expires at until (pttl ${ttl})`);
});

test('after its pub/sub connection was cut, a node is handed every kept revocation again', async (t) => {
  const { engines, heard } = await pair(t);
  const until = Date.now() + 60_000;
  await engines[0].revoke({ kind: 'jti', jti: 'a:b*c', until });
  await waitFor('the other node', () => revocations(heard[1]!).length === 1);
  await killPubSub(redis);
  // Read back whatever it may have missed: the kept revocation comes again (with its odd name intact).
  await waitFor('read back after the reconnect', () => revocations(heard[1]!).length >= 2, 5_000);
  assert.deepEqual(revocations(heard[1]!).at(-1), { kind: 'jti', jti: 'a:b*c', until });
  // And it still hears new commands.
  await engines[0].broadcast({ kind: 'disconnect', target: { channel: '/a' }, reconnect: true });
  await waitFor('a command after the cut', () => heard[1]!.some((command) => command.kind === 'disconnect'));
});

test('a new node reads the revocations kept before it started; an expired one is gone', async (t) => {
  const { engines, keyPrefix } = await pair(t);
  const now = Date.now();
  await engines[0].revoke({ kind: 'jti', jti: 'long', until: now + 60_000 });
  await engines[0].revoke({ kind: 'jti', jti: 'short', until: now + 150 });
  const admin = new Redis(redis.url);
  t.after(() => admin.disconnect());
  await waitFor('the short one to expire', async () => (await admin.exists(`${keyPrefix}revoked:jti:short`)) === 0);
  const heard: ControlCommand[] = [];
  const late = new RedisEngine({ url: redis.url, keyPrefix });
  late.onControl((command) => heard.push(command));
  t.after(() => late.close());
  await late.ready();
  assert.deepEqual(revocations(heard), [{ kind: 'jti', jti: 'long', until: now + 60_000 }]);
});
