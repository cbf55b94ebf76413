import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import { MessageIdGenerator } from '../../src/core/ids.js';
import { runEngineContract } from '../contracts/engine.contract.js';

runEngineContract('MemoryEngine', { make: (historySize) => new MemoryEngine({ historySize }) });

test('MemoryEngine drops history older than its TTL and reports the gap', async (t) => {
  let now = 1_000_000;
  const clock = { now: () => now, setTimeout, clearTimeout, setInterval, clearInterval } as never;
  const engine = new MemoryEngine({ historySize: 100, historyTtlMs: 1000, clock });
  t.after(() => engine.close());
  const first = await engine.publish({ channel: '/t', data: 'old' });
  now += 600;
  await engine.publish({ channel: '/t', data: 'newer' });
  now += 600;
  const page = await engine.history('/t', { since: first.id });
  assert.deepEqual(page.messages.map((m) => m.data), ['newer']);
  assert.equal(page.gap, false, 'nothing after `first` was evicted');
  const fromStart = await engine.history('/t', { since: '0' });
  assert.equal(fromStart.gap, true, '`old` was evicted');
});

test('message ids keep increasing when the clock steps back or a millisecond overflows', () => {
  let now = 5000;
  const ids = new MessageIdGenerator(() => now);
  const seen = [ids.next()];
  now = 4000; // clock stepped back
  for (let i = 0; i < 36 ** 4 + 10; i++) seen.push(ids.next());
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!, `id ${i}`);
  assert.ok(seen.every((id) => id.length === 13));
});

test('MemoryEngine refuses publishes after close', async () => {
  const engine = new MemoryEngine();
  await engine.close();
  await assert.rejects(engine.publish({ channel: '/a', data: 1 }), { code: 'HERALD_ERR_CLOSED' });
});
