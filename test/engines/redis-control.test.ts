/**
 * The Redis engine's control plane (redis-control.ts), engine to engine on a real Redis: commands
 * reach the other nodes and not the sender, revocations merge (the wider wins), expire at their
 * `until`, and are handed over again after the pub/sub connection was cut, so a node that missed
 * one meanwhile still learns it; so are the commands sent while a node was cut off (read from the
 * control log, with their age), and unsubscribes to nodes started later. After Redis lost its
 * data, the nodes keep again the revocations and withdrawals they know.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import type { ControlCommand, Revocation } from '../../src/core/control.js';
import { RedisEngine } from '../../src/engines/redis/redis-engine.js';
import { startCutProxy } from '../helpers/cut-proxy.js';
import type { CutProxy } from '../helpers/cut-proxy.js';
import { killPubSub, startRedis } from '../helpers/redis.js';
import type { TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const redis = await startRedis({ after: (fn) => after(fn) });
let spaces = 0;

/** Two engines; the second through `proxy` when given (to cut it off alone). */
async function pair(t: { after(fn: () => unknown): void }, server: TestRedis = redis, proxy?: CutProxy) {
  const keyPrefix = `ctl${++spaces}:`;
  const heard: ControlCommand[][] = [[], []];
  const ages: number[][] = [[], []];
  const errors: string[] = [];
  const engines = [0, 1].map((i) => {
    const engine = new RedisEngine({ url: i === 1 && proxy !== undefined ? proxy.url : server.url, keyPrefix, onError: (error) => errors.push(String((error as Error).message)) });
    engine.onControl((command, sentAgoMs) => (heard[i]!.push(command), ages[i]!.push(sentAgoMs)));
    t.after(() => engine.close());
    return engine;
  }) as [RedisEngine, RedisEngine];
  await Promise.all(engines.map((engine) => engine.ready()));
  return { engines, heard, ages, errors, keyPrefix };
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

test('commands sent while a node is cut off from Redis reach it once it is back: once each, in order, with how long ago they were sent', async (t) => {
  const proxy = await startCutProxy(t, redis.port);
  const { engines, heard, ages } = await pair(t, redis, proxy);
  proxy.cut();
  await waitFor('the node to see Redis gone', () => !engines[1].health().healthy);
  const kick: ControlCommand = { kind: 'disconnect', target: { user: '42' }, reconnect: false, note: 'spam' };
  const join: ControlCommand = { kind: 'subscribe', target: { user: '42' }, channel: '/user/42' };
  await engines[0].broadcast(kick);
  await engines[0].broadcast(join);
  const cutFor = Date.now();
  await waitFor('the node to stay cut off a little', () => Date.now() - cutFor >= 50);
  proxy.heal();
  await waitFor('both commands after the reconnect', () => heard[1]!.length >= 2, 8_000);
  assert.deepEqual(heard[1], [kick, join]);
  assert.ok(ages[1]!.every((age) => age >= 40), `heard late, and told so (${ages[1]})`);
  // Live again, and nothing twice.
  await engines[0].broadcast({ kind: 'disconnect', target: { session: 'z' }, reconnect: true });
  await waitFor('a live command', () => heard[1]!.length === 3);
  assert.equal(ages[1]![2], 0);
  await killPubSub(redis);
  await engines[0].broadcast({ kind: 'disconnect', target: { session: 'after-cut' }, reconnect: true });
  await waitFor('the command sent around the cut', () => heard[1]!.some((command) => command.kind === 'disconnect' && 'session' in command.target && command.target.session === 'after-cut'), 8_000);
  assert.equal(heard[1]!.filter((command) => command.kind === 'disconnect').length, 3, 'none twice');
});

test('an unsubscribe is kept for a grant\'s life: a node started afterwards is handed it, with its age', async (t) => {
  const { engines, keyPrefix } = await pair(t);
  const command: ControlCommand = { kind: 'unsubscribe', target: { user: 'a:b/c' }, channel: '/team/7/**' };
  await engines[0].broadcast(command);
  const heard: [ControlCommand, number][] = [];
  const late = new RedisEngine({ url: redis.url, keyPrefix });
  late.onControl((sent, sentAgoMs) => heard.push([sent, sentAgoMs]));
  t.after(() => late.close());
  await late.ready();
  assert.deepEqual(heard.map(([sent]) => sent), [command]);
  assert.ok(heard[0]![1] >= 0 && heard[0]![1] < 60_000);
});

test('after Redis restarted empty, the nodes keep again the revocations and withdrawals they know, and say so', async (t) => {
  const own = await startRedis(t);
  const { engines, heard, errors, keyPrefix } = await pair(t, own);
  const until = Date.now() + 60_000;
  await engines[0].revoke({ kind: 'jti', jti: 'leaked', until });
  await engines[1].broadcast({ kind: 'unsubscribe', target: { session: 's1' }, channel: '/x' });
  await waitFor('each heard the other', () => heard[0]!.length === 1 && heard[1]!.length === 1);
  await own.stop();
  await own.start();
  const admin = new Redis(own.url);
  t.after(() => admin.disconnect());
  await waitFor('the revocation kept again', async () => (await admin.exists(`${keyPrefix}revoked:jti:leaked`)) === 1, 8_000);
  await waitFor('the withdrawal kept again', async () => (await admin.exists(`${keyPrefix}withdrawn:s:s1:/x`)) === 1, 8_000);
  assert.ok(errors.some((error) => /Redis lost its data: kept again/.test(error)), errors.join('\n'));
  assert.ok((await admin.pttl(`${keyPrefix}revoked:jti:leaked`)) > 50_000, 'until its until');
});
