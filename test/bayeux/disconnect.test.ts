import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startHerald } from '../helpers/herald.js';
import { postJson } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { RawWs } from '../helpers/raw-ws.js';
import { waitFor } from '../helpers/wait.js';

describe('/meta/disconnect', () => {
  test("ends the session at once, releasing its held connect with advice none when it comes with the client's cookie", async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const client = new RawBayeux(port);
    await client.open();
    await client.subscribe('/bye');
    const held = client.connect();
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    const res = await client.send([{ channel: '/meta/disconnect', clientId: client.clientId, id: 'd' }]);
    assert.deepEqual(res.json(), [{ channel: '/meta/disconnect', id: 'd', successful: true }]);
    const released = (await held).json();
    assert.equal(released.length, 1);
    assert.deepEqual(released[0].advice, { reconnect: 'none' });
    assert.equal(herald.sessionCount, 0);
    assert.equal(herald.stats().patterns, 0, 'subscriptions freed');
    const [after] = (await client.connect()).json();
    assert.equal(after.error, '402::session_unknown');
  });

  test('sent by someone else (no cookie) ends the session, but tells the held connect to handshake again, not to stop', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const client = new RawBayeux(port);
    await client.open();
    await client.subscribe('/bye');
    const held = client.connect();
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    const [bye] = (await postJson(port, '/bayeux', [{ channel: '/meta/disconnect', clientId: client.clientId }])).json();
    assert.equal(bye.successful, true);
    const [released] = (await held).json();
    assert.equal(released.successful, false);
    assert.equal(released.error, '402:ended_elsewhere:session_closed');
    assert.deepEqual(released.advice, { reconnect: 'handshake', interval: 0 });
    assert.equal(herald.sessionCount, 0);
  });

  test('over WebSocket: a goodbye on its own socket advises none; one from another socket advises handshake, and the socket stays open for it', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const open = async (ws: RawWs) => {
      ws.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h' }]);
      const { clientId } = await ws.next('the handshake reply', (m) => m.channel === '/meta/handshake');
      ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c1', advice: { timeout: 0 } }]);
      await ws.next('the first connect reply', (m) => m.id === 'c1');
      ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c2' }]);
      await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
      return clientId as string;
    };
    const own = await RawWs.open(port);
    t.after(() => own.close());
    const ownId = await open(own);
    own.send([{ channel: '/meta/disconnect', clientId: ownId, id: 'd' }]);
    assert.deepEqual((await own.next('the held connect', (m) => m.id === 'c2')).advice, { reconnect: 'none' });

    const victim = await RawWs.open(port);
    t.after(() => victim.close());
    const victimId = await open(victim);
    const other = await RawWs.open(port);
    t.after(() => other.close());
    other.send([{ channel: '/meta/disconnect', clientId: victimId, id: 'd' }]);
    assert.equal((await other.next('the disconnect reply', (m) => m.id === 'd')).successful, true);
    const released = await victim.next('the held connect', (m) => m.id === 'c2');
    assert.equal(released.error, '402:ended_elsewhere:session_closed');
    assert.equal(released.advice.reconnect, 'handshake');
    victim.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h2' }]);
    assert.equal((await victim.next('a new handshake on the same socket', (m) => m.id === 'h2')).successful, true);
  });

  test('of an unknown client fails without telling it to come back', async (t) => {
    const { port } = await startHerald(t);
    const client = new RawBayeux(port);
    const [reply] = (await client.send([{ channel: '/meta/disconnect', clientId: 'ghost' }])).json();
    assert.deepEqual(reply, { channel: '/meta/disconnect', successful: false, error: '402::session_unknown' });
    const [missing] = (await client.send([{ channel: '/meta/disconnect' }])).json();
    assert.equal(missing.error, '402:clientId:Missing required parameter');
  });
});
