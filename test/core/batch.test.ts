/**
 * A batch, item by item (core/batch.ts), over a scripted Publisher: a refused item does not stop
 * the others, a channel's items go in order, and when the engine fails on one the later items of
 * its channel are not tried (a retry of them, in order, keeps the channel's order) while other
 * channels go on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchStatus, publishBatch, readBatch } from '../../src/core/batch.js';
import { HeraldError } from '../../src/core/errors.js';
import type { PublishOutcome, Publisher } from '../../src/core/publisher.js';

/** A publisher that records what it was asked, and fails with the engine on the data `fail`. */
function scripted(): { publisher: Publisher; asked: string[] } {
  const asked: string[] = [];
  let next = 0;
  const publisher = {
    async publish(channel: string, data: unknown): Promise<PublishOutcome> {
      asked.push(`${channel}:${String(data)}`);
      if (data === 'fail') throw new HeraldError('HERALD_ERR_ENGINE_UNAVAILABLE', 'cannot publish: Redis is unreachable');
      if (data === 'big') return { ok: false, reason: 'too_large', size: 9, max: 1 };
      return { ok: true, message: { id: `id${++next}`, channel, data, publishedAt: 0 }, subscribers: 1, duplicate: false };
    },
  } as unknown as Publisher;
  return { publisher, asked };
}

test('each item gets its own result, in the batch order; a bad one spoils nothing', async () => {
  const { publisher, asked } = scripted();
  const results = await publishBatch(publisher, [{ channel: '/a', data: 1 }, { channel: '/a', data: 'big' }, 'nonsense', { channel: '/b' }, { channel: '/a', data: 2, extra: 1 }, { channel: '/a', data: 3 }]);
  assert.deepEqual(results.map((result) => result.status), [200, 413, 400, 400, 400, 200]);
  assert.match((results[3] as { error: string }).error, /data is required/);
  assert.match((results[4] as { error: string }).error, /"extra" is not a field/);
  assert.deepEqual(asked, ['/a:1', '/a:big', '/a:3'], "one channel's items in order");
  assert.equal(batchStatus(results), 200);
});

test("the engine failing on an item leaves the rest of its channel untried, and other channels go on", async () => {
  const { publisher, asked } = scripted();
  const results = await publishBatch(publisher, [{ channel: '/a', data: 1 }, { channel: '/a', data: 'fail' }, { channel: '/b', data: 1 }, { channel: '/a', data: 2 }]);
  assert.deepEqual(results.map((result) => result.status), [200, 503, 200, 503]);
  assert.match((results[3] as { error: string }).error, /not published: an earlier message to this channel/);
  assert.ok(!asked.includes('/a:2'), 'the later item was not tried');
  assert.equal(batchStatus([results[1]!, results[3]!]), 503, 'all failing alike: the whole answer says so');
});

test('a batch must be an array of 1 to max items', () => {
  assert.equal(readBatch({}, 3).ok, false);
  assert.match((readBatch([], 3) as { error: string }).error, /empty/);
  const tooMany = readBatch([1, 2, 3, 4], 3);
  assert.equal(tooMany.ok, false);
  assert.equal(tooMany.tooMany, true);
  assert.equal(readBatch([1, 2, 3], 3).ok, true);
});
