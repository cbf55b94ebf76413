/**
 * What a Redis fault costs subscribers, and that they are told: a pub/sub cut is caught up on
 * every channel with interest (patterns get a gap signal, in each transport's form); a Redis that
 * restarts empty with its clock behind never issues ids below delivered ones, and starts a new
 * epoch that every subscription hears of; a subscription is live before its subscribe settles.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import type { Message } from '../../src/core/message.js';
import { RedisEngine } from '../../src/engines/redis/redis-engine.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream, postJson } from '../helpers/http.js';
import { RawWs } from '../helpers/raw-ws.js';
import { killPubSub, startRedis } from '../helpers/redis.js';
import type { TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

type Hookable = { after(fn: () => unknown): void };

/** An engine whose deliveries and gap reports are recorded. */
async function engineOn(t: Hookable, redis: TestRedis) {
  const engine = new RedisEngine({ url: redis.url, historySize: 100 });
  onCleanup(t, () => engine.close());
  await engine.ready();
  const seen: Message[] = [];
  const gaps: string[] = [];
  engine.onMessage((m) => seen.push(m));
  engine.onGap((channel) => gaps.push(channel));
  return { engine, seen, gaps };
}

test('pub/sub cut: a channel with interest but no delivery yet catches up; a pattern subscription is told of the gap', async (t) => {
  const redis = await startRedis(t);
  const { engine: a } = await engineOn(t, redis);
  const { engine: b, seen, gaps } = await engineOn(t, redis);
  await b.subscribe('/quiet');
  await b.subscribe('/p/*');
  assert.ok((await killPubSub(redis)) >= 1);
  // Published while b's subscriptions are down: pub/sub alone drops them.
  await a.publish({ channel: '/quiet', data: 'during the outage' });
  await a.publish({ channel: '/p/x', data: 'on a pattern, during the outage' });
  await waitFor('b caught /quiet up', () => seen.some((m) => m.data === 'during the outage'), 5_000);
  await waitFor('the pattern is told it may have missed some', () => gaps.includes('/p/*'), 5_000);
  assert.ok(!gaps.includes('/quiet'), 'a channel that was caught up has no gap');
  await a.publish({ channel: '/quiet', data: 'after' });
  await waitFor('b is live again', () => seen.some((m) => m.data === 'after'));
  assert.deepEqual(seen.filter((m) => m.channel === '/quiet').map((m) => m.data), ['during the outage', 'after'], 'once each, in order');
});

test('a later subscribe of a pattern, or of one sharing its Redis subscription, settles no earlier than the first', async (t) => {
  const redis = await startRedis(t);
  const { engine } = await engineOn(t, redis);
  const settled: string[] = [];
  const first = engine.subscribe('/s/*').then(() => settled.push('first'));
  const again = engine.subscribe('/s/*').then(() => settled.push('again'));
  const sharing = engine.subscribe('/s/**').then(() => settled.push('sharing'));
  await Promise.all([first, again, sharing]);
  assert.equal(settled[0], 'first', `settled in the order ${settled.join(', ')}`);
});

test('Redis restarts empty with its clock behind the ids delivered: new ids still go up, and every subscription is told of the gap', async (t) => {
  const redis = await startRedis(t);
  const { engine: a } = await engineOn(t, redis);
  const { engine: b, seen, gaps } = await engineOn(t, redis);
  await b.subscribe('/c');
  await b.subscribe('/p/*');
  await a.publish({ channel: '/c', data: 1 });
  // The old Redis's ids run an hour ahead of the new one's clock (as a clock stepped back would).
  const admin = new Redis(redis.url);
  await admin.call('XSETID', 'herald:h:/c', `${Date.now() + 3_600_000}-0`);
  admin.disconnect();
  const ahead = await a.publish({ channel: '/c', data: 2 });
  await waitFor('b has the message from the future', () => seen.length === 2);

  await redis.stop();
  await redis.start();
  await waitFor('both nodes are back', () => a.health().healthy && b.health().healthy, 15_000);
  const after = await a.publish({ channel: '/c', data: 3 });
  assert.ok(after.id > ahead.id, `${after.id} sorts after ${ahead.id}`);
  await waitFor('b delivers the new message', () => seen.length === 3);
  assert.deepEqual(seen.map((m) => m.data), [1, 2, 3]);
  assert.deepEqual([...new Set(gaps)].sort(), ['/c', '/p/*'], 'every subscription of b hears that messages may be lost');
  const page = await b.history('/c', { since: ahead.id });
  assert.deepEqual(page.messages.map((m) => m.data), [3]);
  assert.equal(page.gap, true, 'history after a message of the lost data set has a gap');
  // A channel first published after the restart starts above everything seen too.
  assert.ok((await a.publish({ channel: '/new', data: 1 })).id > ahead.id);
  // A resume point handed out now (a gap answer's cursor) is above the floor: resuming from it
  // is not told of the gap again and again while the channel stays quiet.
  for (const engine of [a, b]) {
    const point = await engine.position('/quiet');
    assert.ok(point >= ahead.id, `${point} is not below what was delivered`);
    assert.equal((await engine.history('/quiet', { since: point })).gap, false);
  }
});

test('Herald nodes: after a pub/sub cut every transport tells its pattern subscribers of the gap, and a channel with no delivery yet catches up', async (t) => {
  const redis = await startRedis(t);
  const a = await startHerald(t, { engine: redis.url });
  const b = await startHerald(t, { engine: redis.url });
  const ready = async (port: number) => (await httpRequest(port, { path: '/ready' })).status === 200;
  await waitFor('both nodes ready', async () => (await ready(a.port)) && (await ready(b.port)));

  const sse = await openStream(b.port, '/sub/feed/*', { Accept: 'text/event-stream' }, t);
  const ndjson = await openStream(b.port, '/sub/feed/*?transport=stream', {}, t);
  const iframe = await openStream(b.port, '/sub/feed/*?transport=iframe', {}, t);
  const fresh = await openStream(b.port, '/sub/fresh', { Accept: 'text/event-stream' }, t);
  const ws = await RawWs.open(b.port, '/sub/feed/*');
  onCleanup(t, () => ws.close());
  const bayeux = new Herald(`${b.url}/bayeux`, { shareConnection: false, WebSocket, backoff: { initialMs: 20, maxMs: 200 } });
  onCleanup(t, () => bayeux.close());
  const bayeuxGaps: string[] = [];
  bayeux.on('gap', (channel) => bayeuxGaps.push(channel));
  await bayeux.subscribe('/feed/*', () => {}).ready;
  const poll = httpRequest(b.port, { path: '/sub/feed/*' });
  await waitFor('every subscriber is in place', async () => (await httpRequest(b.port, { path: '/presence/feed/*' })).json().connections === 6);

  assert.ok((await killPubSub(redis)) >= 1);
  assert.equal((await postJson(a.port, '/pub/fresh', { n: 1 })).status, 200);
  assert.equal((await postJson(a.port, '/pub/feed/x', { n: 2 })).status, 200);

  await waitFor('the fresh channel caught up', () => fresh.text().includes('{"n":1}'), 5_000);
  await waitFor('SSE: event gap', () => sse.text().includes('event: gap\ndata: {"channel":"/feed/*"}\n\n'), 5_000);
  await waitFor('NDJSON: a gap line', () => ndjson.text().includes('{"gap":true,"channel":"/feed/*"}\n'));
  await waitFor('iframe: a gap script', () => iframe.text().includes('h({"gap":true,"channel":"/feed/*"})'));
  await ws.next('WebSocket: a gap frame', (frame) => frame.gap === true && frame.channel === '/feed/*');
  await waitFor('Bayeux: the client hears of the gap', () => bayeuxGaps.includes('/feed/*'));
  const polled = (await poll).json();
  assert.ok(polled.some((item: { gap?: boolean; channel?: string }) => item.gap === true && item.channel === '/feed/*'), JSON.stringify(polled));
});

/** `seen` and `gaps` of one engine as one ordered list, to check which came first. */
async function orderedEngine(t: Hookable, redis: TestRedis) {
  const engine = new RedisEngine({ url: redis.url, historySize: 1000 });
  onCleanup(t, () => engine.close());
  await engine.ready();
  const events: ({ gap: string } | { message: Message })[] = [];
  engine.onMessage((message) => events.push({ message }));
  engine.onGap((gap) => events.push({ gap }));
  return { engine, events };
}

test('a subscription that cannot be caught up after a pub/sub cut hears of the gap before anything the restored subscription brings', async (t) => {
  const redis = await startRedis(t);
  const { engine: a } = await orderedEngine(t, redis);
  const { engine: b, events } = await orderedEngine(t, redis);
  await b.subscribe('/p/*');
  assert.ok((await killPubSub(redis)) >= 1);
  await waitFor('b knows its pub/sub connection is down', () => !b.health().healthy);
  // Interest taken while Redis is out of reach has no resume point: the reconnect reports a gap.
  await b.subscribe('/c');
  let publishing = true;
  const published = (async () => {
    while (publishing) await a.publish({ channel: '/c', data: 'live' }).catch(() => undefined);
  })();
  await waitFor('b delivers on /c again', () => events.some((e) => 'message' in e && e.message.channel === '/c'), 10_000);
  publishing = false;
  await published;
  const first = events.find((e) => ('gap' in e && e.gap === '/c') || ('message' in e && e.message.channel === '/c'));
  assert.deepEqual(first, { gap: '/c' }, 'the gap is said before the first message after it');
});

test('a held REST poll refused while Redis is away (503) leaves no subscription behind', async (t) => {
  const redis = await startRedis(t);
  const { port } = await startHerald(t, { engine: redis.url });
  const sessions = async () => Number(/^herald_sessions (\d+)$/m.exec((await httpRequest(port, { path: '/metrics' })).text)?.[1]);
  const { id } = (await postJson(port, '/pub/c', { n: 1 })).json();
  assert.equal(await sessions(), 0);
  await redis.stop();
  const refused = await httpRequest(port, { path: `/sub/c?since=${id}` });
  assert.equal(refused.status, 503, refused.text);
  // Left behind, it would keep the channel's interest without a resume point, and be answered to no one.
  assert.equal(await sessions(), 0, 'the poll\'s session ended with it');
});

test('pub/sub cut again while the last reconnect is still catching up: a pattern subscriber gets every message, or a gap after the last one it got', async (t) => {
  const redis = await startRedis(t);
  const { engine: a } = await orderedEngine(t, redis);
  const { engine: b, events } = await orderedEngine(t, redis);
  await b.subscribe('/p/*');
  const delivered = (data: number) => events.some((e) => 'message' in e && e.message.data === data);
  const gapsSaid = () => events.filter((e) => 'gap' in e).length;
  const publish = async (data: number) => {
    while (!(await a.publish({ channel: '/p/x', data }).then(() => true, () => false)));
  };
  await publish(0);
  await waitFor('b delivers on /p/x (so it catches /p/x up after a cut)', () => delivered(0));
  // A loaded node: the first catch-up's read of history returns only once the test lets it.
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let reads = 0;
  const history = b.history.bind(b);
  b.history = async (channel, query) => {
    if (reads++ === 0) {
      const page = await history(channel, query);
      await released;
      return page;
    }
    // The second reconnect's catch-up comes after the first one's (the node was busy meanwhile).
    await released;
    await new Promise((resolve) => setImmediate(resolve));
    return history(channel, query);
  };

  await killPubSub(redis);
  // Sees what pub/sub carries (subscribed after the cut, which would take it down too).
  const witness = new Redis(redis.url);
  onCleanup(t, () => witness.disconnect());
  let witnessed = 0;
  witness.on('pmessage', () => witnessed++);
  await witness.psubscribe('*');
  await publish(1); // while b's subscription is down: only its catch-up can bring it
  await waitFor('b resubscribed and reads history', () => gapsSaid() >= 1 && reads >= 1, 10_000);
  const before = witnessed;
  await publish(2); // brought by the restored subscription, held while the channel catches up
  await waitFor('pub/sub carried 2', () => witnessed > before);
  await new Promise((resolve) => setImmediate(resolve));
  await killPubSub(redis);
  await publish(3); // while down again
  await waitFor('b resubscribed again', () => gapsSaid() >= 2, 10_000);
  witness.disconnect(); // the second cut took it down too
  const again = new Redis(redis.url);
  onCleanup(t, () => again.disconnect());
  let carried = false;
  again.on('pmessage', () => (carried = true));
  await again.psubscribe('*');
  await publish(4); // brought by the subscription restored a second time
  await waitFor('pub/sub carried 4', () => carried);
  await new Promise((resolve) => setImmediate(resolve));
  release();
  await waitFor('b delivers 4', () => delivered(4), 10_000);

  const order: (number | 'gap')[] = events.map((e) => ('gap' in e ? 'gap' : (e.message.data as number)));
  for (const seq of [1, 2, 3]) {
    if (delivered(seq)) continue;
    const lastBefore = order.reduce<number>((found, o, index) => (typeof o === 'number' && o < seq ? index : found), -1);
    assert.ok(order.slice(lastBefore + 1).includes('gap'), `${seq} never delivered, and no gap after the last message before it: ${order.join(', ')}`);
  }
  const numbers = order.filter((o) => o !== 'gap');
  assert.deepEqual(numbers, [...numbers].sort((x, y) => (x as number) - (y as number)), `in order: ${order.join(', ')}`);
  assert.equal(new Set(numbers).size, numbers.length, `once each: ${order.join(', ')}`);
});
