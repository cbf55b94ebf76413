/**
 * The Herald client (Node) behind networks that break held requests (issue 19): a proxy that cuts
 * every request it held for 2 s drives it to interval polling, a proxy that buffers streamed
 * bodies to a transport whose responses end; either way every message arrives once, in order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import type { HeraldClientOptions } from '../../src/client/herald.js';
import type { StateDetail } from '../../src/client/upstream.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { startHostileProxy } from '../helpers/hostile-proxy.js';
import type { HostileProxy } from '../helpers/hostile-proxy.js';
import { waitFor } from '../helpers/wait.js';

type Hookable = { after(fn: () => unknown): void };

const CUT_AFTER_MS = 2000;

function client(t: Hookable, proxy: HostileProxy, options: HeraldClientOptions = {}): Herald {
  const herald = new Herald(`${proxy.origin}/bayeux`, {
    shareConnection: false,
    WebSocket,
    backoff: { initialMs: 50, maxMs: 200 },
    maxNetworkDelayMs: 1000,
    pollIntervalMs: 200,
    ...options,
  });
  onCleanup(t, () => herald.close());
  return herald;
}

/** Records each `connected` state's detail, and what a subscription receives. */
function watch(herald: Herald, channel: string) {
  const connected: StateDetail[] = [];
  const losses: number[] = [];
  herald.on('state', (state, detail) => {
    if (state === 'connected') connected.push(detail);
    if (state === 'reconnecting') losses.push(Date.now());
  });
  const received: number[] = [];
  const subscription = herald.subscribe(channel, (data: { n: number }) => received.push(data.n));
  return { connected, losses, received, ready: subscription.ready };
}

/** Publishes 1, 2, 3, … on `channel` from the server side, in order. */
function publisher(server: { publish(channel: string, data: unknown): Promise<unknown> }, channel: string) {
  let n = 0;
  let chain: Promise<unknown> = Promise.resolve();
  return {
    get count() {
      return n;
    },
    send(times = 1) {
      for (let i = 0; i < times; i++) {
        const data = { n: ++n };
        chain = chain.then(() => server.publish(channel, data));
      }
      return chain;
    },
  };
}

const inOrder = (count: number) => Array.from({ length: count }, (_, i) => i + 1);

test('held requests cut after 2 s: the client settles on interval polling, and every message arrives once, in order', async (t) => {
  const { herald: server, port } = await startHerald(t, { historySize: 100, timeoutMs: 10_000 });
  const proxy = await startHostileProxy(t, port, { cutAfterMs: CUT_AFTER_MS });
  const herald = client(t, proxy);
  const seen = watch(herald, '/news');
  await seen.ready;
  const messages = publisher(server, '/news');
  await messages.send(2);
  // Each loss (a cut) is followed by a message published while the client is away: it comes by resume.
  herald.on('state', (state) => void (state === 'reconnecting' && messages.send()));
  await waitFor('interval polling', () => herald.polling, 20_000);
  assert.ok(proxy.cuts >= 3, `${proxy.cuts} cuts before settling`);
  assert.deepEqual(seen.connected.slice(0, 3).map((detail) => detail.transport), ['websocket', 'websocket', 'websocket'], 'the three cut sessions');
  assert.deepEqual(seen.connected.at(-1), { transport: 'long-polling', polling: true });

  // Settled: polls go on, nothing is cut any more, and messages still come, in order.
  const lossesSettled = seen.losses.length;
  const polls = proxy.connects.length;
  await messages.send(5);
  await waitFor('every message', () => seen.received.length >= messages.count && seen.received);
  await waitFor('ten more polls', () => proxy.connects.length >= polls + 10);
  assert.equal(seen.losses.length, lossesSettled, 'no session lost while polling');
  assert.equal(herald.polling, true);
  await waitFor('every message', () => seen.received.length >= messages.count && seen.received);
  assert.deepEqual(seen.received, inOrder(messages.count));
});

test('interval polling climbs back to held requests once the network lets them last', async (t) => {
  const { port } = await startHerald(t, { timeoutMs: 1500 });
  const proxy = await startHostileProxy(t, port, { cutAfterMs: 1000 });
  const herald = client(t, proxy, { upgradeAfterMs: 500 });
  const seen = watch(herald, '/news');
  await waitFor('interval polling', () => herald.polling, 20_000);
  // A climb while holds are still cut ends in polling again, waiting longer before the next.
  const climbed = () => seen.connected.filter((detail) => detail.polling !== true).length;
  const before = climbed();
  await waitFor('a climb back, cut again', () => climbed() > before && herald.polling, 20_000);
  proxy.cutting = false;
  await waitFor('held requests again', () => herald.state === 'connected' && !herald.polling && herald.transport === 'websocket', 20_000);
  assert.equal(seen.connected.at(-1)?.polling, false);
});

test('a proxy that buffers streamed bodies: the WebSocket delivers nothing, the client settles on held long-polls', async (t) => {
  const { herald: server, port } = await startHerald(t, { historySize: 100 });
  const proxy = await startHostileProxy(t, port, { buffer: true });
  const herald = client(t, proxy);
  const seen = watch(herald, '/news');
  await seen.ready;
  assert.deepEqual(seen.connected, [{ transport: 'long-polling', polling: false }], 'the WebSocket never answered the handshake');
  const messages = publisher(server, '/news');
  await messages.send(5);
  await waitFor('every message', () => seen.received.length >= messages.count && seen.received);
  assert.deepEqual(seen.received, inOrder(messages.count));
});

test('a proxy that buffers streamed bodies and cuts held requests: interval polling, every message once, in order', async (t) => {
  const { herald: server, port } = await startHerald(t, { historySize: 100 });
  const proxy = await startHostileProxy(t, port, { buffer: true, cutAfterMs: CUT_AFTER_MS });
  const herald = client(t, proxy);
  const seen = watch(herald, '/news');
  await seen.ready;
  const messages = publisher(server, '/news');
  await messages.send(2);
  herald.on('state', (state) => void (state === 'reconnecting' && messages.send()));
  await waitFor('interval polling', () => herald.polling, 20_000);
  await messages.send(5);
  await waitFor('every message', () => seen.received.length >= messages.count && seen.received);
  assert.deepEqual(seen.received, inOrder(messages.count));
  assert.deepEqual(seen.connected.at(-1), { transport: 'long-polling', polling: true });
});

test('intervalPolling never: held requests cut still fall back only along the transports', async (t) => {
  const { port } = await startHerald(t);
  const proxy = await startHostileProxy(t, port, { cutAfterMs: 500 });
  const herald = client(t, proxy, { intervalPolling: 'never' });
  const seen = watch(herald, '/news');
  await waitFor('three long-polling sessions', () => seen.connected.filter((detail) => detail.transport === 'long-polling').length >= 3, 20_000);
  assert.ok(seen.connected.every((detail) => detail.polling === false));
});
