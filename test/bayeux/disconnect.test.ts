import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

describe('/meta/disconnect', () => {
  test('ends the session at once, releasing its held connect with advice none', async (t) => {
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

  test('of an unknown client fails without telling it to come back', async (t) => {
    const { port } = await startHerald(t);
    const client = new RawBayeux(port);
    const [reply] = (await client.send([{ channel: '/meta/disconnect', clientId: 'ghost' }])).json();
    assert.deepEqual(reply, { channel: '/meta/disconnect', successful: false, error: '402::session_unknown' });
    const [missing] = (await client.send([{ channel: '/meta/disconnect' }])).json();
    assert.equal(missing.error, '402:clientId:Missing required parameter');
  });
});
