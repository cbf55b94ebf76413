import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { CometdPeer, FayePeer } from '../helpers/interop.js';
import type { Received } from '../helpers/interop.js';
import { deferred, waitFor } from '../helpers/wait.js';

describe('CometD and Faye clients together', () => {
  test('chat with each other through Herald', async (t) => {
    const { url } = await startHerald(t, { timeoutMs: 5_000 });
    const cometd = new CometdPeer(`${url}/cometd`);
    const faye = new FayePeer(`${url}/bayeux`);
    onCleanup(t, async () => {
      await cometd.disconnect();
      await faye.disconnect();
    });
    await cometd.handshake();
    const atCometd = deferred<Received>();
    const atFaye = deferred<unknown>();
    await cometd.subscribe('/chat/room', (m) => m.data.from === 'faye' && atCometd.resolve(m));
    await faye.subscribe('/chat/room', (d) => d.from === 'cometd' && atFaye.resolve(d));
    await faye.publish('/chat/room', { from: 'faye', text: 'hello cometd' });
    await cometd.publish('/chat/room', { from: 'cometd', text: 'hello faye' });
    assert.deepEqual((await atCometd.promise).data, { from: 'faye', text: 'hello cometd' });
    assert.deepEqual(await atFaye.promise, { from: 'cometd', text: 'hello faye' });
  });

  for (const transport of ['long-polling', 'websocket'] as const) test(`100 clients × 50 messages over ${transport}: each delivered exactly once, in publish order`, async (t) => {
    const { url, herald } = await startHerald(t, { timeoutMs: 10_000 });
    const MESSAGES = 50;
    const cometds: CometdPeer[] = [];
    const fayes: FayePeer[] = [];
    const received = new Map<string, number[]>();
    onCleanup(t, async () => {
      await Promise.all([...cometds, ...fayes].map((peer) => peer.disconnect()));
    });

    // CometD clients in one process share a cookie jar, like tabs of one browser: they handshake
    // one at a time, and over long-polling all but one poll (multiple-clients advice).
    for (let i = 0; i < 50; i++) {
      const peer = new CometdPeer(`${url}/cometd`, transport);
      cometds.push(peer);
      await peer.handshake();
      const log: number[] = [];
      received.set(`cometd-${i}`, log);
      await peer.subscribe('/load/**', (m) => log.push(m.data.seq));
    }
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const peer = new FayePeer(`${url}/bayeux`, transport);
        fayes.push(peer);
        const log: number[] = [];
        received.set(`faye-${i}`, log);
        await peer.subscribe('/load/room', (d) => log.push(d.seq));
      }),
    );
    assert.equal(herald.sessionCount, 100);
    if (transport === 'websocket') assert.equal(herald.stats().webSockets, 100);

    const publisher = new FayePeer(`${url}/bayeux`);
    fayes.push(publisher);
    for (let seq = 0; seq < MESSAGES; seq++) await publisher.publish('/load/room', { seq });

    const expected = Array.from({ length: MESSAGES }, (_, i) => i);
    await waitFor('every client to have every message', () => [...received.values()].every((log) => log.length >= MESSAGES), 30_000);
    for (const [name, log] of received) assert.deepEqual(log, expected, name);
  });
});
