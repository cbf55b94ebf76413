import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createHerald } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startDroppableHerald, startHerald } from '../helpers/herald.js';
import { FayePeer } from '../helpers/interop.js';
import { deferred, waitFor } from '../helpers/wait.js';

for (const transport of ['long-polling', 'websocket'] as const) describe(`Faye client over ${transport}`, () => {
  test('subscribes with wildcards, publishes, unsubscribes and disconnects', async (t) => {
    const { url, herald } = await startHerald(t, { timeoutMs: 5_000 });
    const peer = new FayePeer(`${url}/bayeux`, transport);
    onCleanup(t, () => peer.disconnect());
    const one: unknown[] = [];
    const deep: unknown[] = [];
    const exact: unknown[] = [];
    const exactSub = await peer.subscribe('/news/sport', (d) => exact.push(d));
    await peer.subscribe('/news/*', (d) => one.push(d));
    await peer.subscribe('/news/**', (d) => deep.push(d));
    assert.equal(peer.connectionType, transport);
    await peer.publish('/news/sport', { goal: 1 });
    await herald.publish('/news/sport/football', { goal: 2 });
    await waitFor('both deliveries', () => deep.length === 2);
    assert.deepEqual(exact, [{ goal: 1 }]);
    assert.deepEqual(one, [{ goal: 1 }]);
    assert.deepEqual(deep, [{ goal: 1 }, { goal: 2 }]);

    await exactSub.cancel();
    await waitFor('the unsubscribe to reach the server', () => herald.stats().patterns === 2);
    await peer.publish('/news/sport', { goal: 3 });
    await waitFor('the third delivery', () => deep.length === 3);
    assert.equal(exact.length, 1);

    await peer.disconnect();
    await waitFor('the session to be gone', () => herald.sessionCount === 0);
  });

  test('a refused publish rejects with the server error', async (t) => {
    const { url } = await startHerald(t, { timeoutMs: 5_000 });
    const peer = new FayePeer(`${url}/bayeux`, transport);
    onCleanup(t, () => peer.disconnect());
    await assert.rejects(peer.publish('/meta/evil', 1), (error: any) => error.code === 403 && /Forbidden channel/.test(error.message));
  });

  test('round-trips through a service channel', async (t) => {
    const { url, herald } = await startHerald(t, { timeoutMs: 5_000 });
    herald.service('/service/upper', ({ data }) => String(data).toUpperCase());
    const peer = new FayePeer(`${url}/bayeux`, transport);
    onCleanup(t, () => peer.disconnect());
    const answer = deferred<unknown>();
    await peer.subscribe('/service/upper', answer.resolve);
    await peer.publish('/service/upper', 'shout');
    assert.equal(await answer.promise, 'SHOUT');
  });

  test('re-handshakes after a restarted server forgot it, and resubscribes by itself', async (t) => {
    const first = createHerald({ timeoutMs: 5_000 });
    const { port } = await first.listen(0, '127.0.0.1');
    const peer = new FayePeer(`http://127.0.0.1:${port}/bayeux`, transport);
    const got: unknown[] = [];
    await peer.subscribe('/survives', (d) => got.push(d));
    const oldId = peer.clientId;
    await first.close();
    const second = createHerald({ timeoutMs: 5_000 });
    await second.listen(port, '127.0.0.1');
    onCleanup(t, async () => {
      await peer.disconnect();
      await second.close();
    });
    await waitFor('Faye to resubscribe on the new server', () => second.stats().patterns === 1, 15_000);
    assert.notEqual(peer.clientId, oldId);
    await second.publish('/survives', 'still here');
    await waitFor('the delivery after restart', () => got.length === 1);
    assert.deepEqual(got, ['still here']);
  });
});

describe('Faye client over websocket', () => {
  test('reconnects after the server drops its WebSocket, and keeps receiving', async (t) => {
    const { url, herald, dropWebSockets, upgrades } = await startDroppableHerald(t, { timeoutMs: 300 });
    const peer = new FayePeer(`${url}/bayeux`, 'websocket');
    onCleanup(t, () => peer.disconnect());
    let connects = 0;
    peer.client.addExtension({ incoming: (m: any, callback: (m: any) => void) => (m.channel === '/meta/connect' && connects++, callback(m)) });
    const got: unknown[] = [];
    await peer.subscribe('/ticker', (d) => got.push(d));
    await herald.publish('/ticker', 1);
    await waitFor('the first tick', () => got.length === 1);
    // Dropped once the client has shown it had the tick (a connect after the next reply); a drop
    // before that ends the session (faye-socket-loss.test.ts).
    const before = connects;
    await waitFor('a connect round trip after the tick', () => connects >= before + 2);
    assert.equal(dropWebSockets(), 1);
    await waitFor('Faye to be connected again', () => upgrades() === 2 && herald.stats().webSockets === 1 && herald.stats().heldConnects === 1, 15_000);
    await herald.publish('/ticker', 2);
    await waitFor('the tick after the drop', () => got.length === 2);
    assert.deepEqual(got, [1, 2]);
  });
});
