/**
 * The Herald client takes deliveries found on any reply (issue 19.3): on its publishes' replies
 * while it polls, and on the application's own responses through `herald.fetch()` — each message
 * once, in order, as if a poll had brought it; the caller sees the application's response as is.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Herald } from '../../src/client/herald.js';
import type { HeraldClientOptions } from '../../src/client/herald.js';
import { createHerald } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { startPiggybackApp, VALIDATION_BODY } from '../helpers/piggyback-app.js';
import { deferred, waitFor } from '../helpers/wait.js';

type Hookable = { after(fn: () => unknown): void };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A fetch that counts the deliveries arriving on replies to requests that hold no connect, over
 * a network that reorders: other requests reach the server `delayMs` late, connects' replies come
 * back `delayMs` late. Replies overtaking one another would bring a channel's newer messages
 * first, and its older ones would then be dropped as already seen.
 */
function countingFetch(delayMs = 0) {
  const counts = { onOtherReplies: 0, onConnects: 0 };
  const fetchImpl: typeof fetch = async (input, init) => {
    const sent = typeof init?.body === 'string' && init.body.startsWith('[') ? (JSON.parse(init.body) as { channel: string }[]) : undefined;
    if (sent === undefined) return fetch(input, init);
    const connect = sent.some((message) => message.channel === '/meta/connect');
    if (!connect) await sleep(delayMs);
    const response = await fetch(input, init);
    const body = (await response.clone().json()) as { successful?: boolean }[];
    const deliveries = body.filter((message) => message.successful === undefined).length;
    if (connect) {
      counts.onConnects += deliveries;
      await sleep(delayMs);
    } else {
      counts.onOtherReplies += deliveries;
    }
    return response;
  };
  return { counts, fetchImpl };
}

function client(t: Hookable, url: string, options: HeraldClientOptions = {}): Herald {
  const herald = new Herald(`${url}/bayeux`, { shareConnection: false, transports: ['long-polling'], backoff: { initialMs: 20, maxMs: 200 }, ...options });
  onCleanup(t, () => herald.close());
  return herald;
}

test('polling, the client gets messages on its publishes’ replies too: 300 in order, each once', async (t) => {
  // Connects answered after 10 ms and 150 ms apart: most of the time none is out.
  const { url, herald: server } = await startHerald(t, { timeoutMs: 10, intervalMs: 150 });
  const { counts, fetchImpl } = countingFetch(5);
  const herald = client(t, url, { fetch: fetchImpl });
  const received: number[] = [];
  const ids: string[] = [];
  await herald.subscribe('/load/a', (data, info) => {
    received.push(data);
    ids.push(info.id!);
  }).ready;
  const TOTAL = 300;
  for (let seq = 0; seq < TOTAL; seq++) {
    if (seq % 3 === 0) await server.publish('/load/a', seq);
    else await herald.publish('/load/a', seq);
  }
  await waitFor('every message', () => received.length >= TOTAL, 5_000).catch(() => undefined);
  assert.deepEqual(received, Array.from({ length: TOTAL }, (_, i) => i));
  assert.equal(new Set(ids).size, TOTAL);
  assert.ok(counts.onOtherReplies > TOTAL / 2, `most came on publish replies: ${JSON.stringify(counts)}`);
});

test('herald.fetch: the application’s reply brings the queued message to the subscriber, and the caller its body as sent', async (t) => {
  // Polls 20 s apart: a message published now can only come on the application's reply.
  const app = await startPiggybackApp(t, { timeoutMs: 10, intervalMs: 20_000 });
  const herald = client(t, app.origin);
  const received: unknown[] = [];
  await herald.subscribe('/chat/room', (data) => received.push(data)).ready;
  await app.herald.publish('/chat/room', { text: 'hello while you type' });

  const response = await herald.fetch('/validate', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":""}' });
  assert.deepEqual(received, [{ text: 'hello while you type' }], 'delivered before the caller sees the response');
  assert.equal(response.status, 422);
  assert.equal(response.headers.get('herald-deliveries'), null);
  assert.deepEqual(await response.json(), VALIDATION_BODY);
  assert.equal(typeof app.seen[0]!['herald-session'], 'string');

  // Nothing queued: the response is the application's own, untouched.
  const again = await herald.fetch(`${app.origin}/validate`, { method: 'POST', body: '{}' });
  assert.deepEqual(await again.json(), VALIDATION_BODY);
  assert.deepEqual(received, [{ text: 'hello while you type' }], 'nothing twice');

  // With a signal (the caller may abort it), the request goes out without the session.
  await app.herald.publish('/chat/room', 'next');
  await herald.fetch('/validate', { method: 'POST', body: '{}', signal: new AbortController().signal });
  assert.equal(app.seen[2]!['herald-session'], undefined);
  assert.equal(received.length, 1);
  await herald.fetch(new Request(`${app.origin}/validate`, { method: 'POST', body: '{}' }));
  assert.deepEqual(received.slice(1), ['next'], 'a Request object works too');
});

test('herald.fetch never sends the session to another origin', async (t) => {
  const app = await startPiggybackApp(t, { timeoutMs: 10, intervalMs: 20_000 });
  const elsewhere = await startPiggybackApp(t);
  const herald = client(t, app.origin);
  await herald.subscribe('/chat/room', () => undefined).ready;
  const response = await herald.fetch(`${elsewhere.origin}/validate`, { method: 'POST', body: '{}' });
  assert.deepEqual(await response.json(), VALIDATION_BODY);
  assert.equal(elsewhere.seen[0]!['herald-session'], undefined);
});

test('herald.fetch: a reply later than maxNetworkDelayMs loses nothing — no poll overtakes the messages it may carry', async (t) => {
  const server = createHerald({ timeoutMs: 10 });
  // The route publishes, then answers: the message can only leave on this reply (the client holds
  // no connect while a request carries its session).
  const app = createServer((req, res) => {
    req.resume();
    req.on('end', async () => {
      if (req.headers['herald-session'] !== undefined) await server.publish('/chat/room', 'older');
      res.statusCode = 422;
      server.piggyback(req, res, VALIDATION_BODY);
    });
  });
  server.attach(app);
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  onCleanup(t, async () => {
    await server.close();
    app.closeAllConnections();
    app.close();
  });
  const origin = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  // The reply carrying the session's messages comes back slowly (a stalled network): after maxNetworkDelayMs.
  const answered = deferred();
  const gate = deferred();
  const slowFetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if (response.headers.get('herald-deliveries') === null) return response;
    answered.resolve();
    await gate.promise;
    return response;
  };
  const herald = client(t, origin, { intervalPolling: 'always', pollIntervalMs: 50, maxNetworkDelayMs: 300, fetch: slowFetch });
  const received: unknown[] = [];
  await herald.subscribe('/chat/room', (data) => received.push(data)).ready;

  // A poll may be out when it is called (the request then goes without the session): again until one carries it.
  let pending: Promise<Response> | undefined;
  while (pending === undefined) {
    const call = herald.fetch('/validate', { method: 'POST', body: '{}' });
    if ((await Promise.race([answered.promise.then(() => 'carried'), call.then(() => 'plain')])) === 'carried') pending = call;
  }
  await server.publish('/chat/room', 'newer');
  // Either a poll brings the newer message while the older one is on its way, or the connection
  // starts over and history brings both: wait for the newer, then let the slow reply in.
  await waitFor('the newer message', () => received.includes('newer'), 5_000);
  gate.resolve();
  const response = await pending;
  assert.deepEqual(await response.json(), VALIDATION_BODY, 'the caller gets the application’s body');
  await waitFor('the older message', () => received.includes('older'), 3_000).catch(() => undefined);
  assert.deepEqual(received, ['older', 'newer'], 'each once, in order');
});
