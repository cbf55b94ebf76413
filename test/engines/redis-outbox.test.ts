/**
 * The Redis outbox beyond the engine contract (which has the lease and cursors): a cursor that
 * outlived its stream, and adds refused while Redis is away.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisEngine } from '../../src/engines/redis/redis-engine.js';
import { startRedis } from '../helpers/redis.js';
import type { TestRedis } from '../helpers/redis.js';

type Hookable = { after(fn: () => unknown): void };

async function engineOn(t: Hookable, redis: TestRedis): Promise<RedisEngine> {
  const engine = new RedisEngine({ url: redis.url, commandTimeoutMs: 500 });
  t.after(() => engine.close());
  await engine.ready();
  return engine;
}

test('a cursor that outlived its stream (Redis lost the rest) is dropped: the reader starts from the new stream, told of the reset', async (t) => {
  const redis = await startRedis(t);
  const outbox = (await engineOn(t, redis)).outbox('webhooks', 10);
  for (const event of ['"a"', '"b"', '"c"']) await outbox.add(event);
  await outbox.lease(5_000);
  const read = await outbox.read('r', 10);
  await outbox.ack('r', read.entries[2]!);
  const admin = new Redis(redis.url);
  t.after(() => admin.disconnect());
  await admin.del('herald:outbox:webhooks', 'herald:outbox:webhooks:seq');
  await outbox.add('"new"');
  const after = await outbox.read('r', 10);
  assert.deepEqual([after.reset, after.skipped, after.entries.map((entry) => entry.event)], [true, 0, ['"new"']]);
  assert.equal(await outbox.ack('r', after.entries[0]!), true);
  assert.deepEqual((await outbox.read('r', 10)).entries, [], 'the new cursor holds');
});

test('a cursor acknowledged after Redis restarted empty moves on: behind the new counter but before the new ids, or ahead of both', async (t) => {
  const redis = await startRedis(t);
  const outbox = (await engineOn(t, redis)).outbox('webhooks', 10);
  const admin = new Redis(redis.url);
  t.after(() => admin.disconnect());
  await outbox.lease(5_000);
  // A batch sent before the restart, its cursor written after: an old id, a seq the new stream reaches.
  await admin.set('herald:outbox:webhooks:cursor:r', '1000-0 2');
  for (const event of ['"n1"', '"n2"', '"n3"']) await outbox.add(event);
  const read = await outbox.read('r', 10);
  assert.deepEqual([read.reset, read.entries.map((entry) => entry.event)], [false, ['"n1"', '"n2"', '"n3"']]);
  assert.equal(await outbox.ack('r', read.entries[2]!), true);
  assert.deepEqual((await outbox.read('r', 10)).entries, [], 'moved past them: not sent again and again');
  // A cursor from a Redis whose clock was ahead: an id after every new one.
  await admin.set('herald:outbox:webhooks:cursor:r', `${Date.now() + 3_600_000}-0 1`);
  const ahead = await outbox.read('r', 10);
  assert.deepEqual([ahead.reset, ahead.entries.length], [true, 3]);
});

test('while Redis is away, adding is refused (the caller drops and counts the event) rather than queued', async (t) => {
  const redis = await startRedis(t);
  const outbox = (await engineOn(t, redis)).outbox('webhooks', 10);
  await redis.stop();
  await assert.rejects(outbox.add('"lost"', { key: 'k', ttlMs: 100 }), { code: 'HERALD_ERR_ENGINE_UNAVAILABLE' });
  await assert.rejects(outbox.lease(1000), { code: 'HERALD_ERR_ENGINE_UNAVAILABLE' });
});
