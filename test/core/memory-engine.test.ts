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

/** A clock the test moves by hand; its timers are the real ones (these tests set none). */
function handClock(start = 1_000_000): { clock: never; advance(ms: number): void } {
  let now = start;
  return { clock: { now: () => now, setTimeout, clearTimeout, setInterval, clearInterval } as never, advance: (ms) => (now += ms) };
}

test('a channel whose history expired and was dropped still reports the gap once it is written again (issue 14.1)', async (t) => {
  const { clock, advance } = handClock();
  const engine = new MemoryEngine({ historySize: 100, historyTtlMs: 2000, clock });
  t.after(() => engine.close());
  const m1 = await engine.publish({ channel: '/t/a', data: 'm1' });
  await engine.publish({ channel: '/t/a', data: 'm2' });
  advance(2500);
  assert.deepEqual(await engine.history('/t/a'), { messages: [], gap: false }, 'the emptied channel is dropped');
  assert.equal((await engine.history('/t/a', { since: m1.id })).gap, true, 'm2 is gone');
  await engine.publish({ channel: '/t/a', data: 'm3' });
  const page = await engine.history('/t/a', { since: m1.id });
  assert.deepEqual(page.messages.map((m) => m.data), ['m3']);
  assert.equal(page.gap, true, 'm2 was lost: the reader must be told');
});

test('a channel evicted by the channel cap reports the gap once written again (issue 14.1)', async (t) => {
  const engine = new MemoryEngine({ historySize: 10, historyMaxChannels: 2 });
  t.after(() => engine.close());
  const m1 = await engine.publish({ channel: '/a', data: 'm1' });
  await engine.publish({ channel: '/a', data: 'm2' });
  await engine.publish({ channel: '/b', data: 'b' });
  await engine.publish({ channel: '/c', data: 'c' }); // evicts /a, the least recently written
  assert.equal(engine.historyCounts().channels, 2);
  await engine.publish({ channel: '/a', data: 'm3' });
  const page = await engine.history('/a', { since: m1.id });
  assert.deepEqual(page.messages.map((m) => m.data), ['m3']);
  assert.equal(page.gap, true);
  const m2 = (await engine.history('/a')).messages[0]!;
  assert.equal((await engine.history('/a', { since: m2.id })).gap, false, 'a reader from m3 lost nothing');
});

test('the channel cap evicts the least recently written channel after a burst on another (issue 16: a burst moves nothing)', async (t) => {
  const engine = new MemoryEngine({ historySize: 10, historyMaxChannels: 2 });
  t.after(() => engine.close());
  await engine.publish({ channel: '/a', data: 1 });
  await engine.publish({ channel: '/b', data: 1 });
  for (let i = 0; i < 3; i++) await engine.publish({ channel: '/b', data: i });
  await engine.publish({ channel: '/a', data: 2 });
  await engine.publish({ channel: '/a', data: 3 });
  await engine.deleteHistory('/a');
  await engine.publish({ channel: '/a', data: 4 }); // /a comes back, newest again
  await engine.publish({ channel: '/c', data: 1 }); // evicts /b, now the least recently written
  assert.deepEqual((await engine.history('/b')).messages, []);
  assert.deepEqual((await engine.history('/a')).messages.map((m) => m.data), [4]);
  await engine.publish({ channel: '/c', data: 2 });
  await engine.publish({ channel: '/b', data: 9 }); // evicts /a
  assert.deepEqual((await engine.history('/a')).messages, []);
  assert.deepEqual((await engine.history('/c')).messages.map((m) => m.data), [1, 2]);
});

test('deleteHistory leaves a tombstone: readers from before the deletion get a gap after new messages too', async (t) => {
  const engine = new MemoryEngine({ historySize: 10 });
  t.after(() => engine.close());
  const m1 = await engine.publish({ channel: '/d', data: 1 });
  const m2 = await engine.publish({ channel: '/d', data: 2 });
  await engine.deleteHistory('/d');
  const after = await engine.position('/d');
  await engine.publish({ channel: '/d', data: 3 });
  assert.equal((await engine.history('/d', { since: m1.id })).gap, true);
  assert.equal((await engine.history('/d', { since: m2.id })).gap, true, 'the channel was reset after m2');
  assert.equal((await engine.history('/d', { since: after })).gap, false, 'a reader from after the reset lost nothing');
  assert.equal((await engine.history('/other', { since: m1.id })).gap, false, 'other channels are not concerned');
});

test('tombstones are bounded: past the cap the oldest fold into a floor that still reports their gap', async (t) => {
  const engine = new MemoryEngine({ historySize: 10, historyMaxChannels: 1, maxTombstones: 2 });
  t.after(() => engine.close());
  const first = await engine.publish({ channel: '/c0', data: 0 });
  await engine.publish({ channel: '/c0', data: 'lost' });
  for (let i = 1; i <= 4; i++) await engine.publish({ channel: `/c${i}`, data: i }); // /c0../c3 are dropped; /c0, /c1 fold
  await engine.publish({ channel: '/c0', data: 'back' });
  const page = await engine.history('/c0', { since: first.id });
  assert.deepEqual(page.messages.map((m) => m.data), ['back']);
  assert.equal(page.gap, true, 'the folded tombstone of /c0 still signals its gap');
});

test('no false gap on a channel that never had a message, nor with history off before anything was published', async (t) => {
  const engine = new MemoryEngine({ historySize: 10 });
  t.after(() => engine.close());
  const other = await engine.publish({ channel: '/other', data: 1 });
  assert.deepEqual(await engine.history('/quiet', { since: other.id }), { messages: [], gap: false });
  const none = new MemoryEngine({ historySize: 0 });
  t.after(() => none.close());
  const position = await none.position('/n');
  assert.equal((await none.history('/n', { since: position })).gap, false, 'nothing published: nothing missed');
  await none.publish({ channel: '/n', data: 'unkept' });
  assert.equal((await none.history('/n', { since: position })).gap, true, 'history off: what was published since is lost');
});
