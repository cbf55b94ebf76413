/**
 * The Faye client over WebSocket loses its socket (transport down), opens another and carries on
 * with the same clientId. What the server had written to the dead socket never arrived: the session
 * ends with handshake advice, so the client handshakes again, resubscribes, and a client that
 * resumes (`ext.herald.since` on its subscribe, as the delivery checker's Faye door does) gets it
 * from history — never a silent loss. A socket whose deliveries the client has shown it received
 * (by its next /meta/connect on that socket) ends nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FaultProxy } from '../checker/proxy.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { FayePeer } from '../helpers/interop.js';
import { waitFor } from '../helpers/wait.js';

/** A Faye client over WebSocket through `proxy`, with the resume a careful user adds, recording what it gets. */
async function resumingFaye(t: { after(fn: () => unknown): void }, proxy: FaultProxy) {
  const peer = new FayePeer(`http://127.0.0.1:${proxy.port}/bayeux`, 'websocket');
  onCleanup(t, () => peer.disconnect());
  const got: unknown[] = [];
  const handshakes: string[] = [];
  const connects = { replies: 0 };
  let last: string | undefined;
  peer.client.addExtension({
    outgoing: (message: any, callback: (m: any) => void) => {
      if (message.channel === '/meta/handshake') message.ext = { ...message.ext, herald: { ids: true } };
      if (message.channel === '/meta/subscribe' && last !== undefined) message.ext = { ...message.ext, herald: { since: last } };
      callback(message);
    },
    incoming: (message: any, callback: (m: any) => void) => {
      if (message.channel === '/meta/handshake' && message.successful === true) handshakes.push(message.clientId);
      if (message.channel === '/meta/connect') connects.replies++;
      const id = message.ext?.herald?.id;
      if (message.data !== undefined && typeof id === 'string') last = id;
      callback(message);
    },
  });
  await peer.subscribe('/a', (data) => got.push(data));
  return { peer, got, handshakes, connects };
}

test('Faye over WebSocket: what the server wrote to a socket that died is not lost; the client handshakes again and resumes', async (t) => {
  const { port, herald } = await startHerald(t, { timeoutMs: 2_000 });
  const proxy = new FaultProxy(() => [port]);
  await proxy.listen();
  onCleanup(t, () => proxy.close());
  const { peer, got, handshakes } = await resumingFaye(t, proxy);
  await waitFor('Faye on WebSocket', () => peer.connectionType === 'websocket' && herald.stats().webSockets === 1);
  await herald.publish('/a', 1);
  await waitFor('the first message', () => got.length === 1);

  // The socket stops carrying anything to the client; what the server writes now sits in the
  // network, and goes down with it.
  proxy.stall(1, 60_000, () => 0);
  await herald.publish('/a', 2);
  await waitFor('the server wrote it', () => herald.stats().memory.queueBytes === 0);
  assert.ok(proxy.cut(1, () => 0) >= 1);
  await waitFor('Faye opened another socket', () => herald.stats().webSockets === 1 && proxy.connections > 0);
  await herald.publish('/a', 3);
  await waitFor('the message after the loss', () => got.includes(3));
  assert.deepEqual(got, [1, 2, 3], 'the lost one is resumed from history, in order, once');
  assert.equal(handshakes.length, 2, 'the session that lost deliveries ended: the client handshook again');
});

test('Faye over WebSocket: a socket that closes after the client confirmed what it got ends nothing', async (t) => {
  const { port, herald } = await startHerald(t, { timeoutMs: 300 });
  const proxy = new FaultProxy(() => [port]);
  await proxy.listen();
  onCleanup(t, () => proxy.close());
  const { peer, got, handshakes, connects } = await resumingFaye(t, proxy);
  await waitFor('Faye on WebSocket', () => peer.connectionType === 'websocket' && herald.stats().webSockets === 1);
  await herald.publish('/a', 1);
  await waitFor('the first message', () => got.length === 1);
  // The held connect is answered, and the client connects again after that reply: it had the delivery.
  const before = connects.replies;
  await waitFor('a connect reply after the delivery, and the next connect held', () => connects.replies > before && herald.stats().heldConnects === 1, 5_000);
  proxy.cut(1, () => 0);
  await waitFor('Faye opened another socket', () => herald.stats().webSockets === 1 && proxy.connections > 0);
  await herald.publish('/a', 2);
  await waitFor('the next message', () => got.includes(2));
  assert.deepEqual(got, [1, 2]);
  assert.equal(handshakes.length, 1, 'the same session goes on');
});
