/**
 * The Redis user records beyond the contract: a user counted while Redis was away (it restarted
 * empty) is written again when it is back and told online by the next sweep; the node's users are
 * still online, and those it lost meanwhile leave; a node restarted under its old name drops the
 * connections its previous life left, so nobody stays online forever.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisEngine } from '../../src/engines/redis/redis-engine.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

test('users counted while Redis was away are written back and told online by the next sweep', async (t) => {
  const redis = await startRedis(t);
  const engine = new RedisEngine({ url: redis.url, presenceTtlMs: 2000 });
  t.after(() => engine.close());
  await engine.ready();
  assert.equal(await engine.userConnected('ada'), true);
  await redis.stop();
  // Refused, or (Redis not yet seen gone) failed: either way counted on the node, told later.
  assert.equal(await engine.userConnected('bob').catch(() => false), false, 'nothing is known while Redis is away');
  await redis.start();
  await waitFor('the engine is back', () => engine.health().healthy);
  const found = await waitFor('the restore', async () => {
    const sweep = await engine.sweepUsers(60_000);
    return sweep.online.length > 0 ? sweep : undefined;
  });
  assert.deepEqual([...found.online].sort(), ['ada', 'bob'], 'Redis lost its data: both are online again, told again (at least once)');
  assert.equal(await engine.userConnected('bob'), false, 'a second tab');
});

test('a node restarted under its old name drops what its previous life left: those users leave', async (t) => {
  const redis = await startRedis(t);
  // What a node n1 killed with -9 leaves: cy online with one connection on n1.
  const raw = new Redis(redis.url);
  t.after(() => raw.quit());
  await raw.multi().hset('k:u:cy', 'n:n1', '1', '~', String(Date.now())).sadd('k:users:n:n1', 'cy').sadd('k:users:nodes', 'n1').exec();
  const again = new RedisEngine({ url: redis.url, nodeId: 'n1', keyPrefix: 'k:', presenceTtlMs: 2000 });
  t.after(() => again.close());
  await again.ready();
  assert.equal(await again.userConnected('dee'), true);
  const swept = await waitFor('cy offline', async () => {
    const sweep = await again.sweepUsers(0);
    return sweep.offline.length > 0 ? sweep : undefined;
  });
  assert.deepEqual(swept.offline, ['cy'], 'its old connection did not linger');
});
