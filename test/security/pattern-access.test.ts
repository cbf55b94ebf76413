/**
 * Pattern subscriptions against channel rules (issue 15 A.2): a wider wildcard must not bypass a
 * narrower rule. `/chat/**` beside `/chat/private/** → nobody` is accepted, and what is published
 * under `/chat/private/` never reaches it — over REST (SSE, long-poll, WebSocket) and Bayeux; the
 * same for claim rules; presence of such a pattern is refused, history is judged per channel.
 * Each stream gets the denied message first and an allowed one after it: the queue is FIFO, so
 * once the allowed one arrived, the denied one would have arrived before it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import type { JWTPayload } from 'jose';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { RawWs } from '../helpers/raw-ws.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const PRIVATE_CHAT = { channels: [{ pattern: '/chat/private/**', subscribe: 'nobody' as const }, { pattern: '/chat/**', subscribe: 'anyone' as const }] };
const ADMIN_OPS = { channels: [{ pattern: '/ops/**', subscribe: { claim: 'role', equals: 'admin' } }, { pattern: '/**', subscribe: 'token' as const }] };

function hs256(claims: JWTPayload): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('1h').sign(Buffer.from(SECRET));
}

/** The data of the deliveries in a Bayeux connect response. */
function dataOf(messages: any[]): unknown[] {
  return messages.filter((m) => m.data !== undefined).map((m) => m.data);
}

describe('a pattern wider than a closing rule', () => {
  test('REST SSE: /sub/chat/private/ceo is refused; /sub/chat/** is accepted and never hears /chat/private/ceo', async (t) => {
    const { port, herald } = await startHerald(t, { permissions: PRIVATE_CHAT });
    assert.equal((await httpRequest(port, { path: '/sub/chat/private/ceo?wait=0' })).status, 401);

    const stream = await openStream(port, '/sub/chat/**', { Accept: 'text/event-stream' }, t);
    assert.equal(stream.res.statusCode, 200);
    await herald.publish('/chat/private/ceo', 'secret');
    await herald.publish('/chat/room', 'hello');
    await waitFor('the allowed message', () => stream.text().includes('"hello"'));
    assert.ok(!stream.text().includes('secret'), stream.text());
  });

  test('REST long-poll and WebSocket on /sub/chat/** skip /chat/private/ceo; the publish reply counts only who receives', async (t) => {
    const { port, herald } = await startHerald(t, { permissions: PRIVATE_CHAT });
    const poll = httpRequest(port, { path: '/sub/chat/**' });
    const ws = await RawWs.open(port, '/sub/chat/**');
    t.after(() => ws.close());
    // Each door creates its session and subscribes it in one go.
    await waitFor('both subscriptions', () => herald.stats().sessions === 2);

    const denied = await httpRequest(port, { method: 'POST', path: '/pub/chat/private/ceo', headers: { 'Content-Type': 'application/json' }, body: '"secret"' });
    assert.equal(denied.json().subscribers, 0, 'a guarded subscriber is not counted, nor told');
    await herald.publish('/chat/room', 'hello');
    assert.deepEqual((await poll).json().map((m: any) => m.data), ['hello']);
    await ws.next('the allowed message', (m) => m.data === 'hello');
    assert.deepEqual(ws.frames.map((m) => m.data), ['hello']);
  });

  test('Bayeux long-polling: /chat/** is accepted and filtered, /chat/private/** refused', async (t) => {
    const { port, herald } = await startHerald(t, { permissions: PRIVATE_CHAT });
    const client = new RawBayeux(port);
    await client.open();
    assert.equal((await client.subscribe('/chat/private/**')).error, '403:/chat/private/**:subscribe_denied');
    assert.equal((await client.subscribe('/chat/**')).successful, true);
    await herald.publish('/chat/private/ceo', 'secret');
    await herald.publish('/chat/room', 'hello');
    assert.deepEqual(dataOf((await client.connect()).json()), ['hello']);
  });

  test('Bayeux: a token given on /meta/subscribe opens its own channels under the pattern, for that subscription', async (t) => {
    const { port, herald } = await startHerald(t, { jwtSecret: SECRET, permissions: PRIVATE_CHAT });
    const client = new RawBayeux(port);
    await client.open();
    const token = await hs256({ subscribe: ['/chat/private/ceo'] });
    const res = await client.send([{ channel: '/meta/subscribe', clientId: client.clientId, subscription: '/chat/**', id: client.nextId(), ext: { auth: { token } } }]);
    assert.equal(res.json()[0].successful, true);
    await herald.publish('/chat/private/cfo', 'not granted');
    await herald.publish('/chat/private/ceo', 'granted');
    await herald.publish('/chat/room', 'hello');
    assert.deepEqual(dataOf((await client.connect()).json()), ['granted', 'hello']);
  });

  test('claim rules: a /** rule for any token does not open the admin-only /ops/** (SSE and Bayeux)', async (t) => {
    const { port, herald } = await startHerald(t, { jwtSecret: SECRET, permissions: ADMIN_OPS });
    const user = await hs256({ role: 'user' });
    const admin = await hs256({ role: 'admin' });
    assert.equal((await httpRequest(port, { path: `/sub/ops/log?wait=0&token=${user}` })).status, 403);
    const userStream = await openStream(port, `/sub/**?token=${user}`, { Accept: 'text/event-stream' }, t);
    const adminStream = await openStream(port, `/sub/**?token=${admin}`, { Accept: 'text/event-stream' }, t);
    const bayeux = new RawBayeux(port);
    assert.equal((await bayeux.handshake({ ext: { auth: { token: user } } })).successful, true);
    await bayeux.connect({ advice: { timeout: 0 } });
    assert.equal((await bayeux.subscribe('/**')).successful, true);

    await herald.publish('/ops/log', 'secret');
    await herald.publish('/news/today', 'hello');
    await waitFor('the admin hears both', () => adminStream.text().includes('"hello"'));
    assert.ok(adminStream.text().includes('"secret"'));
    await waitFor('the user hears the news', () => userStream.text().includes('"hello"'));
    assert.ok(!userStream.text().includes('secret'), userStream.text());
    assert.deepEqual(dataOf((await bayeux.connect()).json()), ['hello']);
  });

  test('presence of a pattern needs the right to all of it; history is judged per channel', async (t) => {
    const { port } = await startHerald(t, { permissions: PRIVATE_CHAT });
    const presence = await httpRequest(port, { path: '/presence/chat/**' });
    assert.equal(presence.status, 403);
    assert.match(presence.json().error, /spans channels/);
    assert.equal((await httpRequest(port, { path: '/presence/chat/public/**' })).status, 200);
    assert.equal((await httpRequest(port, { path: '/presence/chat/private/*' })).status, 401);
    assert.equal((await httpRequest(port, { path: '/history/chat/private/ceo' })).status, 401);
    assert.equal((await httpRequest(port, { path: '/history/chat/room' })).status, 200);
    assert.equal((await httpRequest(port, { path: '/history/chat/**' })).status, 400, 'history is per channel');
  });
});
