/**
 * A resume across a range the engine no longer holds reports the gap, on every door, even after
 * the channel's history was dropped whole and the channel written again (issue 14.1).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { systemClock } from '../../src/core/clock.js';
import type { Clock } from '../../src/core/clock.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

/** The real clock, moved forward on demand: expiry without waiting for it. */
function shiftedClock(): { clock: Clock; advance(ms: number): void } {
  let offset = 0;
  return { clock: { ...systemClock, now: () => Date.now() + offset }, advance: (ms) => (offset += ms) };
}

async function publish(port: number, channel: string, data: unknown): Promise<string> {
  const res = await httpRequest(port, { method: 'POST', path: `/pub${channel}`, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(data) });
  assert.equal(res.status, 200, res.text);
  return res.json().id;
}

test('history expired and dropped, then written again: /history and an SSE resume from before both report the gap', async (t) => {
  const { clock, advance } = shiftedClock();
  const { port } = await startHerald(t, { historySize: 100, historyTtlMs: 2000, clock });
  const m1 = await publish(port, '/t/a', 'm1');
  await publish(port, '/t/a', 'm2');
  advance(2500);
  const emptied = (await httpRequest(port, { path: '/history/t/a' })).json();
  assert.deepEqual(emptied.messages, []);
  await publish(port, '/t/a', 'm3');

  const page = (await httpRequest(port, { path: `/history/t/a?since=${m1}` })).json();
  assert.deepEqual(page.messages.map((m: { data: unknown }) => m.data), ['m3']);
  assert.equal(page.gap, true, 'm2 was lost');

  const sub = await openStream(port, '/sub/t/a', { Accept: 'text/event-stream', 'Last-Event-ID': m1 }, t);
  await waitFor('the gap and m3', () => /event: gap[\s\S]*"m3"/.test(sub.text()));
  assert.match(sub.text(), new RegExp(`event: gap\ndata: \\{"channel":"/t/a","lastEventId":"${m1}"\\}`));
});

test('an SSE gap with nothing left to replay carries the id to resume from: a reconnect from it is not told again, and misses nothing', async (t) => {
  const { clock, advance } = shiftedClock();
  const { port } = await startHerald(t, { historySize: 100, historyTtlMs: 2000, clock });
  const m1 = await publish(port, '/t/b', 'm1');
  await publish(port, '/t/b', 'm2');
  advance(2500);
  const first = await openStream(port, '/sub/t/b', { Accept: 'text/event-stream', 'Last-Event-ID': m1 }, t);
  await waitFor('the gap', () => /event: gap/.test(first.text()));
  const resumeFrom = /event: gap\nid: (\S+)\n/.exec(first.text())?.[1];
  assert.ok(resumeFrom !== undefined, `the gap names where to resume: ${JSON.stringify(first.text().slice(-200))}`);
  first.req.destroy();
  const m3 = await publish(port, '/t/b', 'm3');
  assert.ok(m3 > resumeFrom);
  const second = await openStream(port, '/sub/t/b', { Accept: 'text/event-stream', 'Last-Event-ID': resumeFrom }, t);
  await waitFor('m3', () => second.text().includes('"m3"'));
  assert.doesNotMatch(second.text(), /event: gap/, 'the gap was said once');
});
