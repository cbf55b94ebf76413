/**
 * The Herald client against a server that answers badly: a fake Bayeux endpoint on loopback that
 * sends malformed JSON, advice out of range or of the wrong type, unknown advice, redirects, and
 * deliveries on channels without number. Whatever it sends, the client must not throw uncaught,
 * spin, or grow without bound: it backs off and tries again, or ignores what makes no sense.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Herald } from '../../src/client/herald.js';
import type { HeraldClientOptions } from '../../src/client/herald.js';
import type { State } from '../../src/client/upstream.js';
import { onCleanup } from '../helpers/cleanup.js';
import { waitFor } from '../helpers/wait.js';

type Hookable = { after(fn: () => unknown): void };
type Bayeux = Record<string, any>;

/**
 * What the fake server does with one request's messages: a reply body (a string is sent as it
 * is), or undefined to hold the request until the test ends.
 */
type Behaviour = (messages: Bayeux[], req: IncomingMessage, res: ServerResponse) => unknown[] | string | undefined | 'handled';

/** A Bayeux endpoint that answers handshakes and subscribes well and everything else as `connect` says; it counts what it gets. */
async function fakeServer(t: Hookable, connect: Behaviour, handshake?: Behaviour) {
  const counts = { handshake: 0, connect: 0, requests: 0 };
  const held = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      counts.requests++;
      let messages: Bayeux[];
      try {
        messages = JSON.parse(body);
      } catch {
        messages = [];
      }
      const first = messages[0] ?? {};
      let reply: ReturnType<Behaviour>;
      if (first.channel === '/meta/handshake') {
        counts.handshake++;
        reply = handshake?.(messages, req, res) ?? [{ ...first, successful: true, clientId: `c${counts.handshake}`, supportedConnectionTypes: ['long-polling'], advice: { reconnect: 'retry', interval: 0, timeout: 30_000 } }];
      } else if (first.channel === '/meta/connect') {
        counts.connect++;
        reply = connect(messages, req, res);
      } else {
        reply = messages.map((message) => ({ ...message, successful: true }));
      }
      if (reply === 'handled') return;
      if (reply === undefined) {
        held.add(res);
        return;
      }
      const text = typeof reply === 'string' ? reply : JSON.stringify(reply);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(t, () => {
    for (const res of held) res.destroy();
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bayeux`, counts };
}

function client(t: Hookable, url: string, options: HeraldClientOptions = {}): Herald {
  const herald = new Herald(url, { shareConnection: false, backoff: { initialMs: 50, maxMs: 400 }, maxNetworkDelayMs: 2000, ...options });
  onCleanup(t, () => herald.close());
  return herald;
}

/** Counts during a short window: what must not happen (a spin) shows as a count, not as a wait for an event. */
async function during<T>(ms: number, read: () => T): Promise<T> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return read();
}

/** The first connect of a session, which every server answers at once. */
const isFirstConnect = (messages: Bayeux[]) => messages[0]?.advice?.timeout === 0;

test('advice out of range or of the wrong type is ignored: no connect loop, no held connect given up at once', async (t) => {
  // Before the fix, 1e12 overflowed the timer (the next connect at once, again and again), and
  // "30000" was concatenated with the network allowance into a delay that overflowed too.
  const cases: [string, unknown, 'answered' | 'held'][] = [
    ['interval past any timer', { interval: 1e12 }, 'answered'],
    ['interval as text', { interval: '5000x' }, 'answered'],
    ['unknown reconnect', { reconnect: 'sometimes' }, 'answered'],
    ['advice not an object', 'retry', 'answered'],
    ['timeout as text', { timeout: '30000' }, 'held'],
    ['timeout past any timer', { timeout: 1e12 }, 'held'],
    ['negative timeout', { timeout: -1 }, 'held'],
  ];
  for (const [what, advice, connects] of cases) {
    // Connects are answered at once with the advice (the client must wait the interval it had:
    // 1 s), or held after the first, which brings the advice.
    const server = await fakeServer(t, (messages) =>
      connects === 'answered' || isFirstConnect(messages) ? [{ ...messages[0], successful: true, advice }] : undefined,
    (messages) => [{ ...messages[0], successful: true, clientId: 'c1', supportedConnectionTypes: ['long-polling'], advice: { reconnect: 'retry', interval: 1000, timeout: 30_000 } }]);
    const herald = client(t, server.url);
    const states: State[] = [];
    herald.on('state', (state) => states.push(state));
    await waitFor(`${what}: connected`, () => herald.state === 'connected');
    const { connect, handshake } = await during(300, () => ({ ...server.counts }));
    assert.ok(connect <= 2, `${what}: ${connect} connects in 300 ms`);
    assert.equal(handshake, 1, `${what}: the session was never given up`);
    assert.ok(!states.includes('reconnecting'), `${what}: ${states.join(', ')}`);
    herald.close();
  }
});

test('malformed replies, non-Bayeux JSON, error statuses and redirect loops: the client backs off, never throws, never spins', async (t) => {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  t.after(() => {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
  });
  const replies: [string, Behaviour][] = [
    ['truncated JSON', () => '[{"channel":"/meta/connect","succ'],
    ['a JSON number', () => '42'],
    ['an array of nulls', () => '[null,null]'],
    ['a message without a channel', () => '[{"successful":true}]'],
    ['deliveries with odd fields', (m) => [{ channel: 42, data: 1 }, { channel: '/x', data: { ext: 1 }, ext: 'herald', id: {} }, { ...m[0], successful: true, advice: null }]],
    ['HTML from a proxy', (_m, _req, res) => (res.writeHead(502, { 'Content-Type': 'text/html' }).end('<html>bad gateway</html>'), 'handled')],
    ['a redirect to itself', (_m, req, res) => (res.writeHead(307, { Location: req.url! }).end(), 'handled')],
    ['a cut connection', (_m, _req, res) => (res.socket?.destroy(), 'handled')],
  ];
  for (const [what, behaviour] of replies) {
    const server = await fakeServer(t, behaviour);
    const herald = client(t, server.url);
    await waitFor(`${what}: a second session after the bad reply`, () => server.counts.handshake >= 2);
    const before = server.counts.requests;
    const requests = await during(300, () => server.counts.requests - before);
    // Back-off from 50 ms doubling (less jitter): a handful of sessions at most, not hundreds of requests.
    assert.ok(requests <= 40, `${what}: ${requests} requests in 300 ms`);
    herald.close();
  }
  assert.deepEqual(uncaught, []);
});

test('deliveries on channels without number under a pattern do not grow the client without bound', async (t) => {
  const CHANNELS = 60_000;
  const name = (i: number) => `/stocks/${String(i).padStart(6, '0')}${'x'.repeat(200)}`;
  let sent = false;
  const server = await fakeServer(t, (messages) => {
    if (sent) return undefined;
    sent = true;
    const deliveries = Array.from({ length: CHANNELS }, (_, i) => ({ channel: name(i), data: i, ext: { herald: { id: `0mx2m${String(i).padStart(8, '0')}` } } }));
    return [...deliveries, { ...messages[0], successful: true }];
  });
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage().heapUsed;
  const herald = client(t, server.url);
  let received = 0;
  herald.subscribe('/stocks/*', () => received++);
  await waitFor('every delivery', () => received === CHANNELS, 20_000);
  gc();
  const grownMb = (process.memoryUsage().heapUsed - before) / 1024 / 1024;
  // Kept per channel before the fix: ~18 MB for these 60,000 channels (seen ids, resume ids); ~3 MB after.
  assert.ok(grownMb < 10, `the client holds ${grownMb.toFixed(1)} MB after ${CHANNELS} channels`);
});
