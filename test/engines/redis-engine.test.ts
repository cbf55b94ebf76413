import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisEngine } from '../../src/engines/redis/redis-engine.js';
import { runEngineContract } from '../contracts/engine.contract.js';
import { freePort, startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const redis = await startRedis({ after: (fn) => after(fn) });
let engines = 0;

runEngineContract('RedisEngine', {
  async make(historySize) {
    // Each engine its own key space: the contract's channels repeat from test to test.
    const engine = new RedisEngine({ url: redis.url, historySize, keyPrefix: `contract${++engines}:` });
    await engine.ready();
    return engine;
  },
});

test('RedisEngine drops history older than its TTL and tells a reader from before of the gap, even after the key expired', async (t) => {
  const engine = new RedisEngine({ url: redis.url, historySize: 100, historyTtlMs: 300, keyPrefix: 'ttl:' });
  t.after(() => engine.close());
  await engine.ready();
  const before = await engine.position('/t');
  const old = await engine.publish({ channel: '/t', data: 'old' });
  await waitFor('old is past the TTL', () => Date.now() - old.publishedAt > 350);
  await engine.publish({ channel: '/t', data: 'newer' });
  const fromOld = await engine.history('/t', { since: old.id });
  assert.deepEqual(fromOld.messages.map((m) => m.data), ['newer']);
  assert.equal(fromOld.gap, false, 'nothing after `old` was dropped');
  const fromBefore = await engine.history('/t', { since: before });
  assert.equal(fromBefore.gap, true, '`old` was dropped');

  // A channel quiet for twice the TTL loses its key; its next life still knows its past is gone,
  // and says so even to a reader that had seen it all: Redis no longer knows where it ended.
  const first = await engine.publish({ channel: '/quiet', data: 1 });
  const admin = new Redis(redis.url);
  t.after(() => admin.disconnect());
  await waitFor('the stream expired', async () => (await admin.exists('ttl:h:/quiet')) === 0);
  const position = await engine.position('/quiet');
  await engine.publish({ channel: '/quiet', data: 2 });
  const page = await engine.history('/quiet', { since: first.id });
  assert.deepEqual(page.messages.map((m) => m.data), [2]);
  assert.equal(page.gap, true);
  const fromPosition = await engine.history('/quiet', { since: position });
  assert.deepEqual(fromPosition, { messages: page.messages, gap: false }, 'a reader that joined the quiet channel missed nothing');
});

test('RedisEngine without Redis: unhealthy, publishes fail at once with ENGINE_UNAVAILABLE, subscribing still works', async (t) => {
  const port = await freePort();
  const errors: string[] = [];
  const engine = new RedisEngine({ url: `redis://127.0.0.1:${port}`, onError: (_e, context) => errors.push(context) });
  t.after(() => engine.close());
  assert.equal(engine.health().healthy, false);
  assert.match(engine.health().detail ?? '', /redis unreachable/);
  const started = Date.now();
  await assert.rejects(engine.publish({ channel: '/a', data: 1 }), { code: 'HERALD_ERR_ENGINE_UNAVAILABLE' });
  await assert.rejects(engine.history('/a'), { code: 'HERALD_ERR_ENGINE_UNAVAILABLE' });
  await assert.rejects(engine.presence('/a'), { code: 'HERALD_ERR_ENGINE_UNAVAILABLE' });
  assert.ok(Date.now() - started < 1000, 'no waiting for a Redis that is not there');
  await engine.subscribe('/a');
  await engine.join('/a', { session: 'm', user: 'm', anonymous: true });
  await waitFor('the connection errors are reported, not thrown', () => errors.length > 0);
});

test('RedisEngine subscribed to while Redis is away subscribes once Redis comes: the first connection too', async (t) => {
  const late = await startRedis(t);
  await late.stop();
  const engine = new RedisEngine({ url: late.url, keyPrefix: 'late:' });
  t.after(() => engine.close());
  const seen: unknown[] = [];
  engine.onMessage((m) => seen.push(m.data));
  await engine.subscribe('/early');
  await engine.subscribe('/early/*');
  await late.start();
  await engine.ready();
  await engine.publish({ channel: '/early', data: 1 });
  await engine.publish({ channel: '/early/x', data: 2 });
  await waitFor('both arrive', () => seen.length === 2);
  assert.deepEqual(seen, [1, 2]);
});

test('RedisEngine rejects options it cannot use, naming them', () => {
  assert.throws(() => new RedisEngine({ url: redis.url, historySize: -1 }), { code: 'HERALD_ERR_INVALID_OPTION', message: /historySize/ });
  assert.throws(() => new RedisEngine({ url: redis.url, presenceTtlMs: 0 }), { code: 'HERALD_ERR_INVALID_OPTION', message: /presenceTtlMs/ });
});
