/**
 * Interval polling as the server sees it (issue 19): a connect asking `advice.timeout: 0` is
 * answered at once with what is queued, on every HTTP transport; the advice names the
 * maxInterval a poller must stay within; and the Herald client polling a resting page keeps its
 * session alive however long it asked its intervals to grow.
 */
import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { test } from 'node:test';
import { Herald } from '../../src/client/herald.js';
import type { ActivitySource } from '../../src/client/activity.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { startHostileProxy } from '../helpers/hostile-proxy.js';
import { httpRequest } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

const HOLD_MS = 10_000;

/** One callback-polling (JSONP) request, its replies as the page's callback would receive them. */
async function jsonp(port: number, messages: unknown): Promise<{ replies: any[]; elapsedMs: number }> {
  const params = new URLSearchParams({ jsonp: 'cb', message: JSON.stringify(messages) });
  const res = await httpRequest(port, { path: `/bayeux?${params}` });
  let replies: unknown;
  runInNewContext(res.text, { cb: (value: unknown) => (replies = value) });
  return { replies: JSON.parse(JSON.stringify(replies)), elapsedMs: res.elapsedMs };
}

test('long-polling: a connect with advice.timeout 0 is answered at once, with what is queued and the maxInterval to keep', async (t) => {
  const { port, herald } = await startHerald(t, { timeoutMs: HOLD_MS, maxIntervalMs: 5000 });
  const client = new RawBayeux(port);
  await client.open();
  const idle = await client.connect({ advice: { timeout: 0 } });
  assert.ok(idle.elapsedMs < HOLD_MS / 4, `an idle poll took ${idle.elapsedMs} ms`);
  assert.deepEqual(idle.json()[0].advice, { reconnect: 'retry', interval: 0, timeout: HOLD_MS, maxInterval: 5000 });
  await client.subscribe('/poll');
  await herald.publish('/poll', 'one');
  await herald.publish('/poll', 'two');
  const busy = await client.connect({ advice: { timeout: 0 } });
  assert.deepEqual(busy.json().slice(1), [{ channel: '/poll', data: 'one' }, { channel: '/poll', data: 'two' }]);
});

test('callback-polling: a connect with advice.timeout 0 is answered at once too', async (t) => {
  const { port, herald } = await startHerald(t, { timeoutMs: HOLD_MS });
  const { replies: [handshake] } = await jsonp(port, [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['callback-polling'], id: '1' }]);
  const connect = (id: string) => ({ channel: '/meta/connect', clientId: handshake.clientId, connectionType: 'callback-polling', id, advice: { timeout: 0 } });
  await jsonp(port, [connect('2'), { channel: '/meta/subscribe', clientId: handshake.clientId, subscription: '/poll', id: '3' }]);
  const idle = await jsonp(port, [connect('4')]);
  assert.ok(idle.elapsedMs < HOLD_MS / 4, `an idle poll took ${idle.elapsedMs} ms`);
  assert.equal(idle.replies[0].successful, true);
  await herald.publish('/poll', 'one');
  const busy = await jsonp(port, [connect('5')]);
  assert.deepEqual(busy.replies.slice(1), [{ channel: '/poll', data: 'one' }]);
});

test('the client polling a hidden page stays within the server\'s maxInterval: its session is never expired', async (t) => {
  const MAX_INTERVAL_MS = 400;
  const { port, herald: server } = await startHerald(t, { maxIntervalMs: MAX_INTERVAL_MS });
  const proxy = await startHostileProxy(t, port, {});
  // A hidden page asks for polls up to 30 s apart: the server's advice caps them below its expiry.
  const hidden: ActivitySource = { isResting: () => true, onWake: () => () => undefined };
  const herald = new Herald(`${proxy.origin}/bayeux`, { shareConnection: false, intervalPolling: 'always', pollIntervalMs: 100, maxPollIntervalMs: 30_000, activity: hidden });
  onCleanup(t, () => herald.close());
  let connects = 0;
  herald.on('state', (state) => void (state === 'connected' && connects++));
  const received: string[] = [];
  await herald.subscribe('/poll', (data: string) => received.push(data)).ready;
  const from = proxy.connects.length;
  // Eight polls at the cap span about six max-intervals.
  await waitFor('eight polls', () => proxy.connects.length >= from + 8, 10_000);
  const gaps = proxy.connects.slice(from).map((at, i, all) => (i === 0 ? 0 : at - all[i - 1]!)).slice(1);
  assert.ok(Math.max(...gaps) < MAX_INTERVAL_MS, `polls ${gaps.join(', ')} ms apart`);
  assert.ok(Math.max(...gaps) >= MAX_INTERVAL_MS / 2, `the interval grew (${gaps.join(', ')} ms)`);
  assert.equal(connects, 1, 'one session all along');
  assert.equal(server.sessionCount, 1);
  await server.publish('/poll', 'still here');
  await waitFor('the message', () => received.length === 1);
});
