/** The Herald client in Node against a real Herald: transports, fallback, upgrade, restart, advice. */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { Herald } from '../../src/client/herald.js';
import type { HeraldClientOptions } from '../../src/client/herald.js';
import type { State } from '../../src/client/upstream.js';
import { createHerald } from '../../src/server/create-herald.js';
import type { Herald as HeraldServer, HeraldOptions } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { waitFor } from '../helpers/wait.js';

type Hookable = { after(fn: () => unknown): void };

function client(t: Hookable, url: string, options: HeraldClientOptions = {}): Herald {
  const herald = new Herald(`${url}/bayeux`, { shareConnection: false, backoff: { initialMs: 20, maxMs: 200 }, ...options });
  onCleanup(t, () => herald.close());
  return herald;
}

/** Collects what a subscription receives. */
function collect(herald: Herald, channel: string) {
  const received: { data: any; id: string | undefined }[] = [];
  const subscription = herald.subscribe(channel, (data, info) => received.push({ data, id: info.id }));
  return { received, ready: subscription.ready, subscription };
}

/** Herald on a server whose upgrades the test controls, as a proxy in front of it would. */
async function startGuardedHerald(t: Hookable, options: HeraldOptions, upgrade: (req: any, socket: Duplex, head: Buffer, pass: () => void) => void) {
  const server = createServer();
  const herald = createHerald(options);
  herald.attach(server);
  const heraldUpgrade = server.listeners('upgrade')[0] as (req: any, socket: Duplex, head: Buffer) => void;
  server.removeAllListeners('upgrade');
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => upgrade(req, socket, head, () => heraldUpgrade.call(server, req, socket, head)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(t, async () => {
    await herald.close();
    server.close();
  });
  return { herald, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const refuse = (socket: Duplex) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');

for (const [name, options] of [
  ['long-polling', {}],
  ['websocket', { WebSocket }],
] as const) {
  test(`over ${name}: subscribe, publish, and each message once with its id`, async (t) => {
    const { url, herald: server } = await startHerald(t, { historySize: 10 });
    const herald = client(t, url, options);
    const states: State[] = [];
    herald.on('state', (state) => states.push(state));
    const chat = collect(herald, '/chat/room1');
    const everything = collect(herald, '/chat/**');
    await chat.ready;
    await everything.ready;
    assert.equal(herald.state, 'connected');
    assert.equal(herald.transport, name);
    const reply = await herald.publish('/chat/room1', { text: 'hello' });
    assert.equal(reply.successful, true);
    assert.match(reply.messageId ?? '', /^[0-9a-z]{13}$/);
    await server.publish('/chat/room1', { text: 'from the server' });
    await waitFor('both messages', () => chat.received.length === 2 && everything.received.length === 2);
    assert.deepEqual(chat.received.map((m) => m.data.text), ['hello', 'from the server']);
    assert.equal(chat.received[0]!.id, reply.messageId);
    assert.deepEqual(everything.received, chat.received);
    await assert.rejects(herald.publish('/chat/*', 1), /not a channel name/);
    await assert.rejects(herald.publish('/meta/connect', 1), /not a channel name/);
    assert.throws(() => herald.subscribe('/meta/**', () => undefined), /cannot subscribe/);
    assert.deepEqual(states, ['connected']);
  });
}

test('a refused WebSocket upgrade falls back to long-polling, which still delivers', async (t) => {
  let upgrades = 0;
  const { url, herald: server } = await startGuardedHerald(t, {}, (_req, socket) => {
    upgrades++;
    refuse(socket);
  });
  const herald = client(t, url, { WebSocket, upgradeAfterMs: 0 });
  const chat = collect(herald, '/chat/a');
  await chat.ready;
  assert.equal(herald.transport, 'long-polling');
  assert.ok(upgrades >= 1, 'it tried WebSocket first');
  await server.publish('/chat/a', 'hi');
  await waitFor('the message', () => chat.received.length === 1);
});

test('a WebSocket that opens but never answers is given up for the next transport', async (t) => {
  const silent = new WebSocketServer({ noServer: true });
  onCleanup(t, () => silent.close());
  const { url, herald: server } = await startGuardedHerald(t, {}, (req, socket, head) => {
    socket.on('error', () => undefined);
    silent.handleUpgrade(req, socket, head, (ws) => ws.on('message', () => undefined));
  });
  const herald = client(t, url, { WebSocket, maxNetworkDelayMs: 300, upgradeAfterMs: 0 });
  const chat = collect(herald, '/chat/a');
  await chat.ready;
  assert.equal(herald.transport, 'long-polling');
  await server.publish('/chat/a', 'through');
  await waitFor('the message', () => chat.received.length === 1);
});

for (const historySize of [100, 0]) {
  test(`after falling back, the client moves to the better transport without loss or duplicates (history ${historySize})`, async (t) => {
    let allow = false;
    const { url, herald: server } = await startGuardedHerald(t, { historySize }, (_req, socket, _head, pass) => (allow ? pass() : refuse(socket)));
    const herald = client(t, url, { WebSocket, upgradeAfterMs: 100 });
    const gaps: string[] = [];
    herald.on('gap', (channel) => gaps.push(channel));
    const chat = collect(herald, '/chat/a');
    // A pattern cannot be resumed from history: only the old session delivering until the new one
    // is subscribed keeps it whole.
    const all = collect(herald, '/chat/**');
    await chat.ready;
    await all.ready;
    assert.equal(herald.transport, 'long-polling');
    let sent = 0;
    const publishing = setInterval(() => void server.publish('/chat/a', ++sent), 2);
    onCleanup(t, () => clearInterval(publishing));
    await waitFor('some messages on long-polling', () => chat.received.length >= 5);
    allow = true;
    await waitFor('the switch to WebSocket', () => herald.transport === 'websocket', 5000);
    const switchedAt = sent;
    await waitFor('messages after the switch', () => chat.received.length > switchedAt + 20);
    clearInterval(publishing);
    await waitFor('every message', () => chat.received.length === sent && all.received.length === sent);
    const expected = Array.from({ length: sent }, (_, i) => i + 1);
    assert.deepEqual(chat.received.map((m) => m.data), expected);
    assert.deepEqual(all.received.map((m) => m.data), expected);
    assert.deepEqual(gaps, []);
    await waitFor('the old session to go', () => server.stats().sessions === 1);
  });
}

test('a held connect that simply times out is renewed at once, without a reconnect', async (t) => {
  const { url, herald: server } = await startHerald(t, { timeoutMs: 50 });
  let connects = 0;
  server.use({ incoming: (message) => (message.channel === '/meta/connect' && connects++, message) });
  const herald = client(t, url, { backoff: { initialMs: 60_000, maxMs: 60_000 } });
  const states: State[] = [];
  herald.on('state', (state) => states.push(state));
  const chat = collect(herald, '/chat/a');
  await chat.ready;
  // Several holds time out; a reconnect would have to wait a minute.
  await waitFor('five renewed connects', () => connects >= 6, 5000);
  await server.publish('/chat/a', 'still here');
  await waitFor('the message', () => chat.received.length === 1, 2000);
  assert.deepEqual(states, ['connected']);
});

/** Closes a Herald and starts another on the same port: a server restart, with the memory engine's history gone. */
async function restart(t: Hookable, old: HeraldServer, port: number, beforeListening: (next: HeraldServer) => Promise<void>): Promise<HeraldServer> {
  await old.close();
  const next = createHerald({ historySize: 100 });
  onCleanup(t, () => next.close());
  await beforeListening(next);
  await next.listen(port, '127.0.0.1');
  return next;
}

for (const [name, options] of [
  ['long-polling', {}],
  ['websocket', { WebSocket }],
] as const) {
  test(`over ${name}: after a server restart the client resubscribes and receives what was published meanwhile`, async (t) => {
    const { url, port, herald: first } = await startHerald(t, { historySize: 100 });
    const herald = client(t, url, options);
    const gaps: string[] = [];
    herald.on('gap', (channel) => gaps.push(channel));
    const states: State[] = [];
    herald.on('state', (state) => states.push(state));
    const chat = collect(herald, '/chat/a');
    const quiet = collect(herald, '/chat/quiet');
    const pattern = collect(herald, '/chat/**');
    await chat.ready;
    await quiet.ready;
    await pattern.ready;
    await first.publish('/chat/a', 'before');
    await waitFor('the first message', () => chat.received.length === 1);
    // Published on the new server before anyone can reach it: only a resume can bring these.
    const second = await restart(t, first, port, async (next) => {
      await next.publish('/chat/a', 'during 1');
      await next.publish('/chat/a', 'during 2');
      await next.publish('/chat/quiet', 'during, on a channel that had no message before');
    });
    await waitFor('the messages published during the outage', () => chat.received.length === 3 && quiet.received.length === 1, 10_000);
    await second.publish('/chat/a', 'after');
    await waitFor('the message after', () => chat.received.length === 4);
    assert.deepEqual(chat.received.map((m) => m.data), ['before', 'during 1', 'during 2', 'after']);
    assert.ok(states.includes('reconnecting'));
    assert.equal(herald.state, 'connected');
    // The new server's history cannot vouch for ids from before it started, and a pattern has
    // no history to resume from: both are reported, never passed over in silence.
    assert.ok(gaps.includes('/chat/a'));
    assert.ok(gaps.includes('/chat/**'));
  });
}

test('advice "none" on the handshake stops the client for good', async (t) => {
  const { url, herald: server } = await startHerald(t);
  let handshakes = 0;
  server.use({
    outgoing: (message) => {
      if (message.channel !== '/meta/handshake') return message;
      handshakes++;
      return { ...message, successful: false, error: '403::handshake_denied', advice: { reconnect: 'none' } };
    },
  });
  const herald = client(t, url);
  const ended = new Promise<Error | undefined>((resolve) => herald.on('state', (state, detail) => state === 'disconnected' && resolve(detail.error)));
  const refused = herald.publish('/chat/a', 'never sent');
  assert.match((await ended)?.message ?? '', /handshake_denied/);
  await assert.rejects(refused, /refused the connection/);
  assert.equal(handshakes, 1);
  assert.equal(herald.state, 'disconnected');
});

test('a server that forgets the session (handshake advice) gets a new handshake and every subscription back', async (t) => {
  const { url, herald: server } = await startHerald(t, { historySize: 100, timeoutMs: 200 });
  let forget = false;
  server.use({
    incoming: (message) => (forget && message.channel === '/meta/connect' ? { ...message, clientId: 'gone' } : message),
  });
  const herald = client(t, url);
  const chat = collect(herald, '/chat/a');
  await chat.ready;
  await server.publish('/chat/a', 1);
  await waitFor('message 1', () => chat.received.length === 1);
  forget = true;
  const states: State[] = [];
  herald.on('state', (state) => {
    states.push(state);
    forget = false;
  });
  await server.publish('/chat/a', 2);
  await waitFor('a new session', () => states.includes('connected'), 5000);
  await server.publish('/chat/a', 3);
  await waitFor('every message', () => chat.received.length === 3);
  assert.deepEqual(chat.received.map((m) => m.data), [1, 2, 3]);
});

test('a handler that throws is reported and does not stop the others', async (t) => {
  const { url, herald: server } = await startHerald(t);
  const herald = client(t, url);
  const errors: Error[] = [];
  herald.on('error', (error) => errors.push(error));
  herald.subscribe('/a', () => {
    throw new Error('boom');
  });
  const other = collect(herald, '/a');
  await other.ready;
  await server.publish('/a', 1);
  await waitFor('the other handler', () => other.received.length === 1);
  assert.equal(errors[0]?.message, 'boom');
});

test('a refused subscription rejects its ready promise and names the reason; its unsubscribe touches nothing newer', async (t) => {
  const { url, herald: server } = await startHerald(t);
  let deny = true;
  server.use({ incoming: (message) => (deny && message.subscription === '/secret' ? { ...message, error: '403:/secret:subscribe_denied' } : message) });
  const herald = client(t, url);
  const errors: Error[] = [];
  herald.on('error', (error) => errors.push(error));
  const refused = herald.subscribe('/secret', () => undefined);
  await assert.rejects(refused.ready, /subscribe_denied/);
  assert.equal(errors.length, 1);
  deny = false;
  const again = collect(herald, '/secret');
  await again.ready;
  refused.unsubscribe();
  await server.publish('/secret', 'still delivered');
  await waitFor('the newer subscription to receive', () => again.received.length === 1);
});

test('a later subscription from an earlier id gets what history holds after it; nothing arrives twice', async (t) => {
  const { url, herald: server } = await startHerald(t, { historySize: 10 });
  const herald = client(t, url);
  const first = collect(herald, '/news');
  await first.ready;
  const one = await server.publish('/news', 1);
  await server.publish('/news', 2);
  await waitFor('both', () => first.received.length === 2);
  const fresh = new Herald(`${url}/bayeux`, { shareConnection: false });
  onCleanup(t, () => fresh.close());
  const late = collect(fresh, '/news');
  await late.ready;
  const replay: unknown[] = [];
  await fresh.subscribe('/news', (data) => replay.push(data), { since: one.id }).ready;
  await waitFor('the replay', () => replay.length === 1);
  assert.deepEqual(replay, [2]);
  await server.publish('/news', 3);
  await waitFor('the live message', () => replay.length === 2 && late.received.length === 2);
  assert.deepEqual(replay, [2, 3]);
  // The replay reaches the channel's other handler in this client too, once.
  assert.deepEqual(late.received.map((m) => m.data), [2, 3]);
  assert.deepEqual(first.received.map((m) => m.data), [1, 2, 3]);
});

for (const [name, options] of [
  ['long-polling', {}],
  ['websocket', { WebSocket }],
] as const) {
  test(`over ${name}: unsubscribe stops deliveries; close ends the session on the server at once`, async (t) => {
    const { url, herald: server } = await startHerald(t);
    const herald = client(t, url, options);
    const a = collect(herald, '/a');
    const b = collect(herald, '/b');
    await a.ready;
    await b.ready;
    assert.equal(server.stats().patterns, 2);
    a.subscription.unsubscribe();
    await waitFor('the server to drop the subscription', () => server.stats().patterns === 1);
    await server.publish('/a', 'dropped');
    await server.publish('/b', 'kept');
    await waitFor('the kept message', () => b.received.length === 1);
    assert.equal(a.received.length, 0);
    assert.equal(server.stats().sessions, 1);
    herald.close();
    await waitFor('the session to end', () => server.stats().sessions === 0 && server.stats().heldConnects === 0);
    assert.equal(herald.state, 'disconnected');
  });
}

