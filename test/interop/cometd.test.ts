import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createHerald } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startDroppableHerald, startHerald } from '../helpers/herald.js';
import { CometdPeer, cometdTransportOf } from '../helpers/interop.js';
import type { Received } from '../helpers/interop.js';
import { waitFor } from '../helpers/wait.js';

for (const transport of ['long-polling', 'websocket'] as const) describe(`official CometD JS client over ${transport} alone`, () => {
  test('handshakes, subscribes with wildcards, publishes with a reply, unsubscribes, disconnects', async (t) => {
    const { url, herald } = await startHerald(t, { timeoutMs: 5_000 });
    const peer = new CometdPeer(`${url}/cometd`, transport);
    onCleanup(t, () => peer.disconnect());
    const handshake = await peer.handshake();
    assert.equal(cometdTransportOf(peer), transport);
    assert.match(handshake.clientId, /^[0-9a-f]{40}$/);

    const exact: Received[] = [];
    const one: Received[] = [];
    const deep: Received[] = [];
    const exactHandle = await peer.subscribe('/stocks/acme', (m) => exact.push(m));
    await peer.subscribe('/stocks/*', (m) => one.push(m));
    await peer.subscribe('/stocks/**', (m) => deep.push(m));

    const reply = await peer.publish('/stocks/acme', { price: 10 });
    assert.equal(reply.successful, true);
    assert.equal(reply.channel, '/stocks/acme');
    await herald.publish('/stocks/nyse/acme', { price: 11 });
    await waitFor('both deliveries', () => deep.length === 2);
    assert.deepEqual(exact.map((m) => m.data), [{ price: 10 }]);
    assert.deepEqual(one.map((m) => m.channel), ['/stocks/acme']);
    assert.deepEqual(deep.map((m) => m.channel), ['/stocks/acme', '/stocks/nyse/acme'], 'the concrete channel, never the pattern');

    const unsubscribed = await peer.unsubscribe(exactHandle);
    assert.equal(unsubscribed.successful, true);
    await peer.publish('/stocks/acme', { price: 12 });
    await waitFor('the third delivery', () => deep.length === 3);
    assert.equal(exact.length, 1, 'no delivery after unsubscribe');

    const bye = await peer.disconnect();
    assert.equal(bye.successful, true);
    await waitFor('the session to be gone', () => herald.sessionCount === 0);
  });

  test('a publish to a forbidden channel fails on the client without a transport failure', async (t) => {
    const { url } = await startHerald(t, { timeoutMs: 5_000 });
    const peer = new CometdPeer(`${url}/cometd`, transport);
    onCleanup(t, () => peer.disconnect());
    await peer.handshake();
    const reply = await peer.publish('/foo/*', 'x');
    assert.equal(reply.successful, false);
    assert.equal(reply.error, '405:/foo/*:Invalid channel');
    assert.equal((await peer.publish('/fine', 'y')).successful, true);
  });

  test('remoteCall round-trips through a service channel', async (t) => {
    const { url, herald } = await startHerald(t, { timeoutMs: 5_000 });
    herald.service('/service/sum', ({ data }) => ({ sum: (data as number[]).reduce((a, b) => a + b, 0) }));
    const peer = new CometdPeer(`${url}/cometd`, transport);
    onCleanup(t, () => peer.disconnect());
    await peer.handshake();
    const reply = await peer.remoteCall('sum', [1, 2, 3]);
    assert.equal(reply.successful, true);
    assert.deepEqual(reply.data, { sum: 6 });
  });

  test('re-handshakes when a restarted server has forgotten its session, and works again', async (t) => {
    const first = createHerald({ timeoutMs: 5_000 });
    const { port } = await first.listen(0, '127.0.0.1');
    const peer = new CometdPeer(`http://127.0.0.1:${port}/cometd`, transport);
    await peer.handshake();
    const oldId = peer.handshakes[0].clientId;
    await first.close();
    const second = createHerald({ timeoutMs: 5_000 });
    await second.listen(port, '127.0.0.1');
    onCleanup(t, async () => {
      await peer.disconnect();
      await second.close();
    });
    const again = await waitFor('a new successful handshake', () => peer.handshakes.find((h) => h.successful && h.clientId !== oldId), 15_000);
    assert.notEqual(again.clientId, oldId);
    const got: Received[] = [];
    await peer.subscribe('/after/restart', (m) => got.push(m));
    await second.publish('/after/restart', 'hello again');
    await waitFor('the delivery after restart', () => got.length === 1);
  });
});

describe('official CometD JS client over websocket', () => {
  test('reconnects after the server drops its WebSocket, and keeps receiving on the same session', async (t) => {
    const { url, herald, dropWebSockets, upgrades } = await startDroppableHerald(t, { timeoutMs: 300 });
    const peer = new CometdPeer(`${url}/cometd`, 'websocket');
    onCleanup(t, () => peer.disconnect());
    const handshake = await peer.handshake();
    let connects = 0;
    peer.client.addListener('/meta/connect', () => connects++);
    const got: Received[] = [];
    await peer.subscribe('/ticker', (m) => got.push(m));
    await herald.publish('/ticker', 1);
    await waitFor('the first tick', () => got.length === 1);
    // Dropped once the client has shown it had the tick (a connect after the next reply); a drop
    // before that ends the session (faye-socket-loss.test.ts).
    const before = connects;
    await waitFor('a connect round trip after the tick', () => connects >= before + 2);
    assert.equal(dropWebSockets(), 1);
    await waitFor('a new WebSocket', () => upgrades() === 2 && herald.stats().webSockets === 1 && herald.stats().heldConnects === 1, 15_000);
    await herald.publish('/ticker', 2);
    await waitFor('the tick after the drop', () => got.length === 2);
    assert.deepEqual(got.map((m) => m.data), [1, 2]);
    assert.equal(peer.handshakes.filter((h) => h.successful).length, 1, 'the same session carried on');
    assert.equal(peer.client.getClientId(), handshake.clientId);
  });
});
