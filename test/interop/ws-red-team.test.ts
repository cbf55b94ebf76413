/**
 * Bayeux over WebSocket under real and hostile clients: joined frames with message ids across a
 * 64 KiB split, frames mixing messages around an asynchronous extension, extensions added after
 * sockets opened, and sessions that end while a frame is handled.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { CometdPeer, cometdTransportOf } from '../helpers/interop.js';
import { RawWs } from '../helpers/raw-ws.js';
import { waitFor } from '../helpers/wait.js';

const { AckExtension } = await import('cometd');

const HANDSHAKE = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'] };

async function openSession(ws: RawWs, ext?: Record<string, unknown>): Promise<string> {
  ws.send([{ ...HANDSHAKE, id: 'h', ...(ext === undefined ? {} : { ext }) }]);
  const reply = await ws.next('the handshake reply', (m) => m.id === 'h');
  assert.equal(reply.successful, true, JSON.stringify(reply));
  return reply.clientId;
}

describe('joined frames with message ids', () => {
  test('a session that resumes gets each delivery with its id, several to a frame, split past 64 KiB, ids increasing', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 5_000, writeDelayMs: 50 });
    const ws = await RawWs.open(port);
    onCleanup(t, () => ws.close());
    const clientId = await openSession(ws, { herald: { ids: true } });
    ws.send([{ channel: '/meta/subscribe', clientId, subscription: '/ids', id: 's' }]);
    assert.equal((await ws.next('the subscribe reply', (m) => m.id === 's')).successful, true);
    ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c1', advice: { timeout: 0 } }]);
    await ws.next('the first connect reply', (m) => m.id === 'c1');
    ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c2' }]);
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    const before = ws.frames.length;
    const published = await Promise.all([
      ...Array.from({ length: 10 }, (_, n) => herald.publish('/ids', { n })),
      ...[10, 11, 12].map((n) => herald.publish('/ids', { n, pad: 'x'.repeat(30_000) })),
    ]);
    await waitFor('thirteen deliveries', () => ws.frames.slice(before).flat().filter((m) => m.channel === '/ids').length === 13);
    const frames = ws.frames.slice(before);
    assert.ok(frames.some((f) => Array.isArray(f) && f.length > 1), 'several messages to a frame');
    assert.ok(frames.length >= 2, 'split past 64 KiB');
    const deliveries = frames.flat();
    assert.deepEqual(deliveries.map((m) => m.data.n), Array.from({ length: 13 }, (_, i) => i));
    assert.deepEqual(deliveries.map((m) => m.ext?.herald?.id), published.map((p: any) => p.id));
    for (let i = 1; i < deliveries.length; i++) assert.ok(deliveries[i].ext.herald.id > deliveries[i - 1].ext.herald.id, 'ids increase');
  });
});

describe('frames and extensions', () => {
  test('[connect, publish, subscribe] with an asynchronous extension in the middle: replies in the order sent', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 5_000 });
    herald.use({ incoming: async (m) => (m.channel === '/slow' ? new Promise((resolve) => setTimeout(() => resolve(m), 30)) : m) });
    const ws = await RawWs.open(port);
    onCleanup(t, () => ws.close());
    const clientId = await openSession(ws);
    ws.send([
      { channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c', advice: { timeout: 0 } },
      { channel: '/slow', clientId, data: 1, id: 'p' },
      { channel: '/meta/subscribe', clientId, subscription: '/slow', id: 's' },
    ]);
    // A second frame, sent at once, is answered after the first.
    ws.send([{ channel: '/slow', clientId, data: 2, id: 'p2' }]);
    await ws.next('the last reply', (m) => m.id === 'p2');
    const ids = ws.frames.flat().map((m) => m.id).filter((id) => id !== undefined && id !== 'h');
    assert.deepEqual(ids, ['c', 'p', 's', 'p2']);
    const delivered = await ws.next('the delivery of the second publish', (m) => m.channel === '/slow' && m.data === 2);
    assert.equal(delivered.data, 2);
  });

  test('an extension added after a socket opened sees no headers there, and nothing breaks', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 5_000 });
    const ws = await RawWs.open(port, '/bayeux', { 'X-App': 'old' });
    onCleanup(t, () => ws.close());
    const clientId = await openSession(ws);
    const seen: unknown[] = [];
    herald.use({ incoming: (m, context) => (seen.push(context.headers?.['x-app']), m), outgoing: (m, context) => (seen.push(context.headers?.['x-app']), m) });
    ws.send([{ channel: '/meta/subscribe', clientId, subscription: '/late', id: 's' }]);
    assert.equal((await ws.next('the subscribe reply', (m) => m.id === 's')).successful, true);
    ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c', advice: { timeout: 0 } }]);
    assert.equal((await ws.next('the connect reply', (m) => m.id === 'c')).successful, true);
    assert.deepEqual(seen, [undefined, undefined, undefined, undefined]);
    const fresh = await RawWs.open(port, '/bayeux', { 'X-App': 'new' });
    onCleanup(t, () => fresh.close());
    await openSession(fresh);
    assert.deepEqual(seen.slice(4), ['new', 'new']);
  });
});

describe('sessions that end while a frame is handled', () => {
  test('a held connect told it is banned hears it as a reply before the close, though an extension delays that reply', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 5_000 });
    // Any extension makes replies asynchronous: the held connect's answer is written a turn later.
    herald.use({ outgoing: (m) => m });
    const ws = await RawWs.open(port);
    onCleanup(t, () => ws.close());
    const clientId = await openSession(ws);
    ws.send([{ channel: '/meta/subscribe', clientId, subscription: '/banned', id: 's' }]);
    ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c1', advice: { timeout: 0 } }]);
    await ws.next('the first connect reply', (m) => m.id === 'c1');
    ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c2' }]);
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    assert.equal((await herald.disconnect({ channel: '/banned', reconnect: false })).closedHere, 1);
    const closed = await ws.waitClosed();
    assert.equal(closed.code, 1008);
    const reply = ws.frames.flat().find((m) => m.id === 'c2');
    assert.ok(reply !== undefined, 'the held connect was answered before the socket closed');
    assert.equal(reply.successful, false);
    assert.equal(reply.advice?.reconnect, 'none');
  });

  test('a socket that closes while its frame waits on an extension leaves nothing behind', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 5_000 });
    let release: (() => void) | undefined;
    herald.use({ incoming: (m) => (m.channel === '/meta/connect' && m.id === 'c2' ? new Promise((resolve) => (release = () => resolve(m))) : m) });
    const ws = await RawWs.open(port);
    const clientId = await openSession(ws);
    ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c1', advice: { timeout: 0 } }]);
    await ws.next('the first connect reply', (m) => m.id === 'c1');
    ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c2' }]);
    await waitFor('the extension to hold the connect', () => release !== undefined);
    ws.close();
    await ws.waitClosed();
    await waitFor('the socket gone', () => herald.stats().webSockets === 0);
    release!();
    await new Promise((resolve) => setImmediate(resolve));
    await waitFor('no connect held for a closed socket', () => herald.stats().heldConnects === 0);
  });
});

describe('real clients over WebSocket', () => {
  for (const ack of [false, true]) {
    test(`CometD ${ack ? 'with' : 'without'} the AckExtension gets a gathered burst across 64 KiB once each, in order`, async (t) => {
      const { url, herald } = await startHerald(t, { timeoutMs: 5_000, writeDelayMs: 50 });
      const peer = new CometdPeer(`${url}/cometd`, 'websocket');
      if (ack) peer.client.registerExtension('ack', new AckExtension());
      onCleanup(t, () => peer.disconnect());
      await peer.handshake();
      assert.equal(cometdTransportOf(peer), 'websocket');
      const got: number[] = [];
      await peer.subscribe('/burst', (m) => got.push((m.data as { n: number }).n));
      await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
      for (let round = 0; round < 2; round++) {
        const base = round * 13;
        await Promise.all([
          ...Array.from({ length: 10 }, (_, i) => herald.publish('/burst', { n: base + i })),
          ...[10, 11, 12].map((i) => herald.publish('/burst', { n: base + i, pad: 'x'.repeat(30_000) })),
        ]);
        await waitFor('the burst', () => got.length >= base + 13);
      }
      assert.deepEqual(got, Array.from({ length: 26 }, (_, i) => i));
    });
  }

  test('a handshake sharing its frame is refused as over HTTP: the others named, the handshake served', async (t) => {
    const { port } = await startHerald(t, { timeoutMs: 5_000 });
    const ws = await RawWs.open(port);
    onCleanup(t, () => ws.close());
    ws.send([{ channel: '/meta/subscribe', subscription: '/x', id: 'a' }, { ...HANDSHAKE, id: 'h' }, { channel: '/x', data: 1, id: 'b' }]);
    await ws.next('the last reply', (m) => m.id === 'b');
    const replies = ws.frames.flat();
    assert.deepEqual(replies.map((m) => [m.id, m.successful]), [['a', false], ['h', true], ['b', false]]);
    assert.match(replies[0].error, /handshake/);
  });
});
