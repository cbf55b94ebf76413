/**
 * The memory budget history and session queues share (issue 15.6), with small numbers: what it
 * counts, and what gives back when it is exceeded.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Hub } from '../../src/core/hub.js';
import { LimitCounters } from '../../src/core/limits.js';
import { LOW_WATER, MemoryBudget, MESSAGE_OVERHEAD_BYTES, QUEUE_ENTRY_BYTES } from '../../src/core/memory-budget.js';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import type { SlowConsumerPolicy } from '../../src/core/session.js';
import { SessionStore } from '../../src/core/session-store.js';

const KB = 1000;
const message = (kb: number) => 'x'.repeat(kb * KB - 2); // serialised with its quotes: kb × 1000 bytes
const weight = (kb: number) => kb * KB + MESSAGE_OVERHEAD_BYTES;

function setup(t: { after(fn: () => unknown): void }, budgetBytes: number, options: { historySize?: number; slowConsumer?: SlowConsumerPolicy } = {}) {
  const counters = new LimitCounters();
  const budget = new MemoryBudget(budgetBytes, counters);
  const engine = new MemoryEngine({ historySize: options.historySize ?? 100, memoryBudget: budget });
  const sessions = new SessionStore({ maxIntervalMs: 60_000, maxQueue: 1000, slowConsumer: options.slowConsumer, memoryBudget: budget, limits: counters });
  const hub = new Hub(engine, sessions);
  t.after(() => {
    sessions.dispose();
    return engine.close();
  });
  return { budget, counters, engine, sessions, hub };
}

describe('memory budget', () => {
  test('counts a message in history once, and a delivery once however many queues share it', async (t) => {
    const { budget, engine, sessions, hub } = setup(t, 10_000 * KB);
    const readers = [sessions.create(), sessions.create(), sessions.create()];
    for (const reader of readers) await hub.subscribe(reader, '/shared');
    await engine.publish({ channel: '/shared', data: message(10) });
    assert.deepEqual(budget.usage(), { budgetBytes: 10_000 * KB, historyBytes: weight(10), queueBytes: weight(10) + 3 * QUEUE_ENTRY_BYTES });
    readers[0]!.drain();
    assert.equal(budget.usage().queueBytes, weight(10) + 2 * QUEUE_ENTRY_BYTES, 'still held by two queues');
    sessions.close(readers[1]!, 'client');
    readers[2]!.drain();
    assert.equal(budget.usage().queueBytes, 0, 'sent or discarded everywhere: nothing held');
    await engine.deleteHistory('/shared');
    assert.ok(budget.usage().historyBytes < 100, 'only the tombstone is left');
  });

  test('past the budget, history forgets its least recently written channels down to the low-water mark, with a gap for resumers', async (t) => {
    const { budget, counters, engine } = setup(t, 100 * KB);
    const first = await engine.publish({ channel: '/old', data: message(30) });
    await engine.publish({ channel: '/old', data: message(30) });
    await engine.publish({ channel: '/mid', data: message(30) });
    await engine.publish({ channel: '/new', data: message(30) }); // 120 kB: over
    assert.ok(budget.usedBytes <= LOW_WATER * 100 * KB, `reclaimed to the low-water mark, at ${budget.usedBytes}`);
    assert.deepEqual(engine.historyCounts(), { channels: 2, messages: 2 }, '/old went whole, the others stay');
    assert.equal(counters.get('memory_history'), 2);
    await engine.publish({ channel: '/old', data: 'back' });
    const page = await engine.history('/old', { since: first.id });
    assert.deepEqual(page.messages.map((m) => m.data), ['back']);
    assert.equal(page.gap, true, 'what the budget took is a gap, never a silent loss');
  });

  test('when queues hold more than history, the heaviest queue gets the slow-consumer policy (disconnect)', async (t) => {
    const { budget, counters, engine, sessions, hub } = setup(t, 100 * KB, { historySize: 1 });
    const slow = sessions.create();
    const light = sessions.create();
    await hub.subscribe(slow, '/firehose');
    await hub.subscribe(light, '/news');
    await engine.publish({ channel: '/news', data: message(5) });
    for (let i = 0; i < 5; i++) await engine.publish({ channel: '/firehose', data: message(20) });
    await nextTurn();
    assert.equal(slow.closeReason, 'queue_full', 'the heaviest queue went');
    assert.equal(light.isClosed, false, 'the light one stays');
    assert.equal(light.queueLength, 1);
    assert.equal(counters.get('memory_queues'), 1);
    assert.equal(counters.get('queue_closed'), 1);
    assert.ok(budget.usedBytes <= LOW_WATER * 100 * KB);
  });

  test('a session that can be told of gaps (drop-oldest, message ids) loses its oldest deliveries instead', async (t) => {
    const { budget, engine, sessions, hub } = setup(t, 100 * KB, { historySize: 1, slowConsumer: 'drop-oldest' });
    const slow = sessions.create();
    slow.messageIds = true;
    await hub.subscribe(slow, '/firehose');
    for (let i = 0; i < 6; i++) await engine.publish({ channel: '/firehose', data: message(18) });
    await nextTurn();
    assert.equal(slow.isClosed, false);
    assert.ok(slow.queueLength < 6 && slow.queueLength > 0, `dropped some, kept the newest: ${slow.queueLength}`);
    assert.deepEqual(slow.takeGaps(), ['/firehose']);
    assert.ok(budget.usedBytes <= LOW_WATER * 100 * KB);
  });

  test('when history holds more, queues are left alone', async (t) => {
    const { budget, engine, sessions, hub } = setup(t, 100 * KB);
    const reader = sessions.create();
    await hub.subscribe(reader, '/live');
    await engine.publish({ channel: '/live', data: message(10) });
    for (let i = 0; i < 10; i++) await engine.publish({ channel: `/archive/${i}`, data: message(10) });
    assert.equal(reader.isClosed, false);
    assert.equal(reader.queueLength, 1);
    assert.ok(budget.usedBytes <= LOW_WATER * 100 * KB);
  });

  test('refuses a budget that is not a positive number of bytes', () => {
    assert.throws(() => new MemoryBudget(0), { code: 'HERALD_ERR_INVALID_OPTION' });
    assert.throws(() => new MemoryBudget(1.5), { code: 'HERALD_ERR_INVALID_OPTION' });
  });
});
