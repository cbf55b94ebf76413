/** A subscription granted by a token of its own ends when that token expires; the session's others live on. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startHerald } from '../helpers/herald.js';
import { postJson } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { RawWs } from '../helpers/raw-ws.js';
import { waitFor } from '../helpers/wait.js';

const PUBLISH_KEY = 'publish-key-for-tests';
const RULES = { channels: [{ pattern: '/open/**', subscribe: 'anyone' as const }, { pattern: '/**', subscribe: 'grant' as const, publish: 'grant' as const }] };
const ENDED = { channel: '/meta/unsubscribe', successful: true, subscription: '/orders/42', ext: { herald: { reason: 'token_expired' } } };

async function signed(port: number, ttl: number, channel = '/orders/42'): Promise<string> {
  const res = await postJson(port, '/sign', { channel, ttl }, { Authorization: `Bearer ${PUBLISH_KEY}` });
  assert.equal(res.status, 200, res.text);
  return res.json().token;
}

describe('subscriptions granted by a subscribe token', () => {
  test('end when the token expires, with a /meta/unsubscribe notice after the last message; the other subscriptions and the session live on', async (t) => {
    const { port, herald } = await startHerald(t, { publishKey: PUBLISH_KEY, permissions: RULES, timeoutMs: 4_000 });
    const client = new RawBayeux(port);
    await client.open();
    assert.equal((await client.subscribe('/open/news')).successful, true);
    const subscribe = async (token: string) =>
      (await client.send([{ channel: '/meta/subscribe', clientId: client.clientId, subscription: '/orders/42', id: client.nextId(), ext: { auth: { token } } }])).json()[0];
    assert.equal((await subscribe(await signed(port, 2))).successful, true);
    await herald.publish('/orders/42', 'placed');

    // The held connect is answered by the message, then the next one by the notice at expiry.
    const received: any[] = [];
    for (let connects = 0; connects < 3 && !received.some((m) => m.channel === '/meta/unsubscribe'); connects++) {
      const [reply, ...rest] = (await client.connect()).json();
      assert.equal(reply.successful, true);
      received.push(...rest);
    }
    assert.deepEqual(received, [{ channel: '/orders/42', data: 'placed' }, ENDED]);

    await herald.publish('/orders/42', 'unseen');
    await herald.publish('/open/news', 'still here');
    const after = (await client.connect()).json();
    assert.deepEqual(after.slice(1), [{ channel: '/open/news', data: 'still here' }], 'the expired subscription delivers nothing; the other does');
    assert.equal(herald.sessionCount, 1);

    // Acting on it: subscribe again with a fresh token.
    assert.equal((await subscribe(await signed(port, 60))).successful, true);
    await herald.publish('/orders/42', 'shipped');
    assert.deepEqual((await client.connect()).json().slice(1), [{ channel: '/orders/42', data: 'shipped' }]);
  });

  test('over WebSocket: the notice arrives as a frame; subscribing again with a fresh token before expiry renews it', async (t) => {
    const { port, herald } = await startHerald(t, { publishKey: PUBLISH_KEY, permissions: RULES, timeoutMs: 10_000 });
    const ws = await RawWs.open(port);
    t.after(() => ws.close());
    ws.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h' }]);
    const { clientId } = await ws.next('the handshake', (m) => m.id === 'h');
    ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c', advice: { timeout: 0 } }]);
    await ws.next('the first connect', (m) => m.id === 'c');
    const subscribe = async (id: string, channel: string, token: string) => {
      ws.send([{ channel: '/meta/subscribe', clientId, subscription: channel, id, ext: { auth: { token } } }]);
      assert.equal((await ws.next('the subscription', (m) => m.id === id)).successful, true);
    };
    const short = await signed(port, 1);
    await subscribe('s1', '/orders/42', short);
    await subscribe('s2', '/orders/42', await signed(port, 60));
    await subscribe('s3', '/orders/7', await signed(port, 1, '/orders/7'));
    const notice = await ws.next('the notice for /orders/7', (m) => m.channel === '/meta/unsubscribe', 5000);
    assert.deepEqual(notice, { ...ENDED, subscription: '/orders/7' });
    const exp = JSON.parse(Buffer.from(short.split('.')[1]!, 'base64url').toString()).exp * 1000;
    await waitFor('the first token for /orders/42 to be past', () => Date.now() > exp + 500, 3000);
    await herald.publish('/orders/42', 'renewed');
    await ws.next('the message on the renewed subscription', (m) => m.data === 'renewed');
    assert.deepEqual(ws.frames.flat().filter((m) => m.channel === '/meta/unsubscribe'), [notice], 'no notice for the renewed one');
  });
});
