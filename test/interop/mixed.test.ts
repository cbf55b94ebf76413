import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { createHerald } from '../../src/server/create-herald.js';
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
  test('polling, their replies other than connects never carry deliveries (piggyback is the Herald client’s alone)', async (t) => {
    // Connects 1 s apart: most of the time nothing is held for either client. (Not held much
    // shorter: Faye gives up on a reply after 1.2 × the timeout, and what it carried is lost.)
    const herald = createHerald({ timeoutMs: 1000, intervalMs: 1000 });
    const bodies: string[] = [];
    const server = createServer();
    herald.attach(server);
    // Ahead of Herald's own listener: every reply it ends is seen.
    server.prependListener('request', (_req, res) => {
      const end = res.end.bind(res) as (...args: unknown[]) => typeof res;
      res.end = ((...args: unknown[]) => {
        if (typeof args[0] === 'string') bodies.push(args[0]);
        return end(...args);
      }) as typeof res.end;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const cometd = new CometdPeer(`${url}/cometd`);
    const faye = new FayePeer(`${url}/bayeux`);
    onCleanup(t, async () => {
      await cometd.disconnect();
      await faye.disconnect();
      await herald.close();
      server.close();
    });
    await cometd.handshake();
    const atCometd: number[] = [];
    const atFaye: number[] = [];
    await cometd.subscribe('/chat/room', (m) => atCometd.push(m.data.seq));
    await faye.subscribe('/chat/room', (d) => atFaye.push(d.seq));
    for (let seq = 0; seq < 40; seq++) await (seq % 2 === 0 ? faye : cometd).publish('/chat/room', { seq });
    await waitFor('every message at both', () => atCometd.length === 40 && atFaye.length === 40).catch((error) => assert.fail(`${error.message}: ${JSON.stringify({ atCometd, atFaye, bodies: bodies.length })}`));
    assert.deepEqual(atCometd, Array.from({ length: 40 }, (_, i) => i));
    assert.deepEqual(atFaye, atCometd);
    const others = bodies.map((body) => JSON.parse(body) as { channel: string; successful?: boolean }[]).filter((replies) => !replies.some((reply) => reply.channel === '/meta/connect'));
    assert.ok(others.length >= 10, `saw publish replies (${others.length})`);
    assert.deepEqual(others.flat().filter((reply) => reply.successful === undefined), [], 'no delivery rode a reply other than a connect’s');
  });
});
