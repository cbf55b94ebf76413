/**
 * Every door the decision hooks guard, against a real backend on loopback: Bayeux handshake,
 * subscribe and publish with the real CometD client over long-polling and WebSocket, a raw
 * Bayeux WebSocket (its upgrade's headers are the credentials), and REST subscribe (SSE, a poll,
 * a WebSocket) and publish (one message, a batch). Beside JWT rules: a token whose grants allow
 * the channel is never asked about.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { startHookBackend } from '../helpers/hook-backend.js';
import type { HookBackend, HookCall } from '../helpers/hook-backend.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream, postJson } from '../helpers/http.js';
import { CometdPeer } from '../helpers/interop.js';
import type { Received } from '../helpers/interop.js';
import { onCleanup } from '../helpers/cleanup.js';
import { RawWs } from '../helpers/raw-ws.js';
import { waitFor } from '../helpers/wait.js';

type Hookable = { after(fn: () => unknown): void };

const JWT_SECRET = 'a-test-secret-of-at-least-32-characters!';
const KEY = 'the-backends-publish-key';
const RULES = { channels: [{ pattern: '/orders/**', subscribe: 'hook', publish: 'hook' }, { pattern: '/**', subscribe: 'anyone', publish: 'anyone' }] } as const;

/** The application's backend: alice may use /orders/alice/**, and her publishes are cleaned; nobody else may. */
function decide(call: HookCall) {
  const who = call.body.credentials.auth?.user ?? /^(?:Bearer|App) (\w+)$/.exec(call.body.credentials.authorization ?? '')?.[1] ?? call.body.sub;
  if (call.path === '/connect') return { json: who === undefined ? { allow: false, reason: 'who are you?' } : { allow: true, sub: who } };
  if (call.body.channel === '/orders/broken') return { status: 500, json: {} };
  if (who !== 'alice' || !String(call.body.channel).startsWith('/orders/alice')) return { json: { allow: false, reason: `${who} may not use ${call.body.channel}` } };
  if (call.path === '/publish') return { json: { allow: true, data: { text: String(call.body.data.text).toUpperCase(), checked: true } } };
  return { json: { allow: true, sub: who } };
}

async function start(t: Hookable, connect = true) {
  const backend = await startHookBackend(t, decide);
  const running = await startHerald(t, {
    ...(connect ? { connectHook: `${backend.url}/connect` } : {}),
    subscribeHook: `${backend.url}/subscribe`,
    publishHook: `${backend.url}/publish`,
    permissions: RULES,
    publishKey: KEY,
    jwtSecret: JWT_SECRET,
  });
  return { backend, ...running };
}

function handshakeAs(peer: CometdPeer, user: string): Promise<any> {
  return new Promise((resolve) => peer.client.handshake({ ext: { auth: { user } } }, resolve));
}

function callsTo(backend: HookBackend, path: string): HookCall[] {
  return backend.calls.filter((call) => call.path === path);
}

describe('Bayeux with the CometD client', () => {
  for (const transport of ['long-polling', 'websocket'] as const) {
    test(`over ${transport}: handshake, subscribe and publish are each decided by the backend`, async (t) => {
      const { backend, url } = await start(t);
      const peer = new CometdPeer(`${url}/bayeux`, transport);
      onCleanup(t, () => peer.disconnect());
      const handshake = await handshakeAs(peer, 'alice');
      assert.equal(handshake.successful, true, JSON.stringify(handshake));
      assert.deepEqual(callsTo(backend, '/connect')[0]!.body.credentials, { auth: { user: 'alice' } });

      const received: Received[] = [];
      await peer.subscribe('/orders/alice/1', (message) => received.push(message));
      const [subscribeCall] = callsTo(backend, '/subscribe');
      assert.equal(subscribeCall!.body.channel, '/orders/alice/1');
      assert.equal(subscribeCall!.body.sub, 'alice', 'the subject the connect hook named');
      assert.equal(subscribeCall!.body.transport, transport);
      assert.match(subscribeCall!.body.session, /^[\w-]{22}$/, 'the public id, never the clientId');

      // The backend replaces the data: subscribers get its version.
      const ack = await peer.publish('/orders/alice/1', { text: 'hello' });
      assert.equal(ack.successful, true, JSON.stringify(ack));
      await waitFor('the checked message', () => received.length === 1);
      assert.deepEqual(received[0]!.data, { text: 'HELLO', checked: true });
      assert.deepEqual(callsTo(backend, '/publish')[0]!.body.data, { text: 'hello' });

      await assert.rejects(peer.subscribe('/orders/bob/1', () => {}), /403:alice may not use \/orders\/bob\/1:hook_denied/);
      const denied = await peer.publish('/orders/bob/1', { text: 'x' });
      assert.equal(denied.successful, false);
      assert.match(denied.error, /^403:alice may not use \/orders\/bob\/1:hook_denied$/);
      const broken = await peer.publish('/orders/broken', { text: 'x' });
      assert.match(broken.error, /^503:the publish hook answered HTTP 500:hook_unavailable$/);
      // Channels the rules open are never asked about.
      const before = backend.calls.length;
      await peer.subscribe('/lobby', () => {});
      assert.equal(backend.calls.length, before);
    });
  }

  test('a handshake the backend refuses fails in the CometD client with the reason', async (t) => {
    const { url } = await start(t);
    const peer = new CometdPeer(`${url}/bayeux`, 'long-polling');
    onCleanup(t, () => peer.disconnect());
    const reply = await new Promise<any>((resolve) => peer.client.handshake(resolve));
    assert.equal(reply.successful, false);
    assert.equal(reply.error, '403:who are you?:hook_denied');
  });
});

describe('a raw Bayeux WebSocket', () => {
  test("the upgrade's Authorization header is the credential; a publish the backend cannot decide is refused with retry advice", async (t) => {
    const { backend, port } = await start(t);
    const ws = await RawWs.open(port, '/bayeux', { Authorization: 'App alice' });
    onCleanup(t, () => ws.close());
    ws.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: '1' }]);
    const handshake = await ws.next('the handshake reply', (m) => m.channel === '/meta/handshake');
    assert.equal(handshake.successful, true, JSON.stringify(handshake));
    assert.equal(callsTo(backend, '/connect')[0]!.body.credentials.authorization, 'App alice');
    ws.send([{ channel: '/orders/broken', clientId: handshake.clientId, data: {}, id: '2' }]);
    const reply = await ws.next('the publish reply', (m) => m.id === '2');
    assert.equal(reply.successful, false);
    assert.match(reply.error, /:hook_unavailable$/);
    assert.deepEqual(reply.advice, { reconnect: 'retry', interval: 1000 });
  });
});

describe('REST', () => {
  test('subscribe over SSE, a poll and a WebSocket: the backend decides, and names the stream\'s user', async (t) => {
    const { backend, port, herald } = await start(t, false);
    const stream = await openStream(port, '/sub/orders/alice/1', { Accept: 'text/event-stream', Authorization: 'Bearer alice' }, t);
    assert.equal(stream.res.statusCode, 200);
    const [call] = callsTo(backend, '/subscribe');
    assert.equal(call!.body.transport, 'rest-sse');
    assert.equal(call!.body.credentials.authorization, 'Bearer alice', 'a bearer that is not a Herald token goes to the hook');
    await herald.publish('/orders/alice/1', { n: 1 });
    await waitFor('the message on the stream', () => stream.text().includes('"n":1'));
    assert.equal((await herald.userSessions('alice')).sessions.length, 1, 'the stream acts as the subject the hook named');

    const refused = await httpRequest(port, { path: '/sub/orders/bob/1', headers: { Accept: 'text/event-stream', Authorization: 'App alice' } });
    assert.equal(refused.status, 403);
    assert.equal(refused.json().error, 'the subscribe hook refused: alice may not use /orders/bob/1 (hook_denied)');

    const poll = await httpRequest(port, { path: '/sub/orders/alice/1?wait=0', headers: { Authorization: 'App alice' } });
    assert.equal(poll.status, 200);
    assert.equal(callsTo(backend, '/subscribe').at(-1)!.body.transport, 'rest-long-poll');
    const unavailable = await httpRequest(port, { path: '/sub/orders/broken?wait=0', headers: { Authorization: 'App alice' } });
    assert.equal(unavailable.status, 503);

    const ws = new WebSocket(`ws://127.0.0.1:${port}/sub/orders/bob/1`, { headers: { Authorization: 'App alice' } });
    const status = await new Promise<number | undefined>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
      ws.on('open', () => resolve(101));
      ws.on('error', () => resolve(undefined));
    });
    ws.terminate();
    assert.equal(status, 403);
    assert.equal(callsTo(backend, '/subscribe').at(-1)!.body.transport, 'rest-websocket');
  });

  test('publish: one message and a batch, each item decided with its data; the backend\'s key is never asked about', async (t) => {
    const { backend, port } = await start(t, false);
    const one = await postJson(port, '/pub/orders/alice/1', { text: 'hi' }, { Authorization: 'App alice' });
    assert.equal(one.status, 200, one.text);
    const refused = await postJson(port, '/pub/orders/alice/1', { text: 'hi' }, { Authorization: 'App mallory' });
    assert.equal(refused.status, 403);
    assert.match(refused.json().error, /the publish hook refused: mallory may not use/);
    const batch = await postJson(port, '/pub', [
      { channel: '/orders/alice/1', data: { text: 'two' } },
      { channel: '/orders/bob/1', data: { text: 'three' } },
    ], { Authorization: 'App alice' });
    assert.deepEqual(batch.json().results.map((r: any) => r.status), [200, 403]);
    const asked = backend.calls.length;
    assert.equal((await postJson(port, '/pub/orders/alice/1', { text: 'from the backend' }, { Authorization: `Bearer ${KEY}` })).status, 200);
    assert.equal(backend.calls.length, asked, 'the publish key is the backend itself');
    const history = (await httpRequest(port, { path: '/history/orders/alice/1', headers: { Authorization: `Bearer ${KEY}` } })).json();
    assert.deepEqual(history.messages.map((m: any) => m.data), [{ text: 'HI', checked: true }, { text: 'TWO', checked: true }, { text: 'from the backend' }]);
  });

  test('beside JWT rules: a token whose grants cover the channel is not asked about', async (t) => {
    const { backend, port } = await start(t, false);
    const token = await new SignJWT({ subscribe: ['/orders/**'], publish: ['/orders/**'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('svc').setExpirationTime('1h').sign(Buffer.from(JWT_SECRET));
    assert.equal((await httpRequest(port, { path: `/sub/orders/x/1?wait=0&token=${token}` })).status, 200);
    assert.equal((await postJson(port, '/pub/orders/x/1', { a: 1 }, { Authorization: `Bearer ${token}` })).status, 200);
    assert.equal(backend.calls.length, 0);
  });
});
