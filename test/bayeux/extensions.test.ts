import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { RawWs } from '../helpers/raw-ws.js';

describe('extensions', () => {
  test('run in order on incoming messages and may rewrite them', async (t) => {
    const { port, herald } = await startHerald(t);
    const order: string[] = [];
    herald.use({ incoming: (m) => (order.push('first'), m.data !== undefined ? { ...m, data: { wrapped: m.data } } : m) });
    herald.use({ incoming: async (m) => (order.push('second'), m) });
    const client = new RawBayeux(port);
    await client.open();
    await client.subscribe('/x');
    order.length = 0;
    await client.publish('/x', 1);
    assert.deepEqual(order, ['first', 'second']);
    assert.deepEqual((await client.connect({ advice: { timeout: 0 } })).json()[1], { channel: '/x', data: { wrapped: 1 } });
  });

  test('an incoming extension that sets error stops the message and returns the error', async (t) => {
    const { port, herald } = await startHerald(t);
    herald.use({
      incoming: (m, context) => (m.channel === '/meta/subscribe' && m.subscription === '/private' ? { ...m, error: `403:${context.clientId}:Forbidden origin` } : m),
    });
    const client = new RawBayeux(port);
    await client.open();
    const reply = await client.subscribe('/private');
    assert.equal(reply.successful, false);
    assert.equal(reply.error, `403:${client.clientId}:Forbidden origin`);
    assert.equal(herald.stats().patterns, 0);
  });

  test('an extension returning null deletes the message; one that throws fails only its message', async (t) => {
    const { port, herald } = await startHerald(t);
    herald.use({
      incoming: (m) => {
        if (m.channel === '/dropped') return null;
        if (m.channel === '/explodes') throw new Error('bug in extension');
        return m;
      },
    });
    const client = new RawBayeux(port);
    await client.open();
    assert.equal((await client.publish('/dropped', 1))[0].error, '404::message_deleted');
    const [failed] = await client.publish('/explodes', 1);
    assert.equal(failed.successful, false);
    assert.equal(failed.error, '500::extension_failed');
    assert.equal((await client.publish('/fine', 1))[0].successful, true);
  });

  test('outgoing extensions see every reply and may add ext', async (t) => {
    const { port, herald } = await startHerald(t);
    herald.use({ outgoing: (m) => ({ ...m, ext: { served: 'herald' } }) });
    const client = new RawBayeux(port);
    const reply = await client.handshake();
    assert.deepEqual(reply.ext, { served: 'herald' });
  });

  test("over a WebSocket, extensions see the upgrade's headers with every message", async (t) => {
    const { port, herald } = await startHerald(t);
    const seen: unknown[] = [];
    herald.use({ incoming: (m, context) => (seen.push([m.channel, context.connectionType, context.headers?.['x-app-version'], context.clientId]), m) });
    const ws = await RawWs.open(port, '/bayeux', { 'X-App-Version': '7.1' });
    t.after(() => ws.close());
    ws.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h' }]);
    const { clientId } = await ws.next('the handshake reply', (m) => m.id === 'h');
    ws.send([{ channel: '/meta/subscribe', clientId, subscription: '/a', id: 's' }]);
    await ws.next('the subscribe reply', (m) => m.id === 's');
    assert.deepEqual(seen, [
      ['/meta/handshake', 'websocket', '7.1', undefined],
      ['/meta/subscribe', 'websocket', '7.1', clientId],
    ]);
  });

  test('meta routing is by exact channel: look-alike names reach no meta handler', async (t) => {
    const { port, herald } = await startHerald(t);
    const seen: string[] = [];
    herald.use({ incoming: (m) => (seen.push(String(m.channel)), m) });
    const client = new RawBayeux(port);
    await client.open();
    for (const channel of ['/meta/subscribe/x', '/meta/../meta/subscribe', '/META/subscribe', '/meta/subscribe/']) {
      const [reply] = (await client.send([{ channel, clientId: client.clientId, subscription: '/a' }])).json();
      assert.equal(reply.successful, false, channel);
      assert.match(reply.error, /^40[235]:/, 'refused as a publish or as a forbidden/invalid channel');
      assert.equal(reply.subscription, undefined, 'no subscribe handler answered');
    }
    assert.equal(herald.stats().patterns, 0);
    assert.ok(!seen.includes('/meta/../meta/subscribe'), 'invalid names are refused before extensions see them');
  });
});
