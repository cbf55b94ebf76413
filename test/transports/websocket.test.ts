import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { publicIdOf } from '../../src/core/ids.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { RawWs } from '../helpers/raw-ws.js';
import { postJson } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { ByteClient } from '../helpers/ws-bytes.js';
import { MAX_WAITING_FRAMES } from '../../src/transports/websocket.js';

const HANDSHAKE = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket', 'long-polling'], id: 'h' };

async function openSession(port: number, t: { after(fn: () => unknown): void }) {
  const ws = await RawWs.open(port);
  onCleanup(t, () => ws.close());
  ws.send([HANDSHAKE]);
  const { clientId } = await ws.next('handshake reply', (m) => m.id === 'h');
  ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c0', advice: { timeout: 0 } }]);
  await ws.next('first connect reply', (m) => m.id === 'c0');
  return { ws, clientId };
}

describe('websocket transport', () => {
  test('handshakes, holds a connect, and pushes deliveries at once without waiting for it', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const { ws, clientId } = await openSession(port, t);
    ws.send([{ channel: '/meta/subscribe', clientId, subscription: '/live/*', id: 's' }]);
    assert.equal((await ws.next('subscribe reply', (m) => m.id === 's')).successful, true);
    ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c1' }]);
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    await herald.publish('/live/a', 1);
    await herald.publish('/live/b', 2);
    await ws.next('the second delivery', (m) => m.channel === '/live/b');
    const deliveries = ws.frames.flat().filter((m) => m.data !== undefined);
    assert.deepEqual(deliveries, [{ channel: '/live/a', data: 1 }, { channel: '/live/b', data: 2 }]);
    assert.equal(herald.stats().heldConnects, 1, 'the connect is still held');
    assert.equal(ws.frames.flat().some((m) => m.id === 'c1'), false);
  });

  test('answers a held connect at its timeout, on the socket', async (t) => {
    const { port } = await startHerald(t, { timeoutMs: 300 });
    const { ws, clientId } = await openSession(port, t);
    const sent = Date.now();
    ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c1' }]);
    const reply = await ws.next('the held connect reply', (m) => m.id === 'c1');
    assert.ok(Date.now() - sent >= 250);
    assert.equal(reply.successful, true);
  });

  test('connects sent one after another on a socket: each replaces the one held, and the last is let go when the socket closes', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const { ws, clientId } = await openSession(port, t);
    for (const [id, replaced] of [['c1'], ['c2', 'c1'], ['c3', 'c2']]) {
      ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id }]);
      if (replaced !== undefined) assert.equal((await ws.next(`${replaced}, replaced by ${id}`, (m) => m.id === replaced)).successful, true);
      await waitFor(`${id} to be held`, () => herald.stats().heldConnects === 1);
    }
    assert.deepEqual(ws.frames.flat().filter((m) => m.channel === '/meta/connect').map((m) => m.id), ['c0', 'c1', 'c2']);
    ws.close();
    await waitFor('the last hold to be let go', () => herald.stats().heldConnects === 0);
  });

  test('a client may switch from long-polling to WebSocket mid-session, and a new socket may carry an old clientId', async (t) => {
    const { port, herald } = await startHerald(t);
    const poller = new RawBayeux(port);
    await poller.open();
    await poller.subscribe('/switch');
    await herald.publish('/switch', 'queued before the switch');
    const ws = await RawWs.open(port);
    onCleanup(t, () => ws.close());
    ws.send([{ channel: '/meta/connect', clientId: poller.clientId, connectionType: 'websocket', id: 'c', advice: { timeout: 0 } }]);
    await ws.next('the queued delivery', (m) => m.data === 'queued before the switch');
    await herald.publish('/switch', 'after');
    await ws.next('a live delivery', (m) => m.data === 'after');
    // The client shows it had them: a connect sent after a reply that left after them.
    for (const id of ['c1', 'c2']) {
      ws.send([{ channel: '/meta/connect', clientId: poller.clientId, connectionType: 'websocket', id, advice: { timeout: 0 } }]);
      await ws.next('connect reply', (m) => m.id === id);
    }
    ws.close();
    await waitFor('the socket to be gone', () => herald.stats().webSockets === 0);
    const again = await RawWs.open(port);
    onCleanup(t, () => again.close());
    again.send([{ channel: '/meta/connect', clientId: poller.clientId, connectionType: 'websocket', id: 'c3', advice: { timeout: 0 } }]);
    assert.equal((await again.next('connect reply', (m) => m.id === 'c3')).successful, true);
    await herald.publish('/switch', 'on the new socket');
    await again.next('delivery on the new socket', (m) => m.data === 'on the new socket');
  });

  test('a socket that ends before the client showed it had what was pushed ends the session: its next connect, anywhere, is told to handshake', async (t) => {
    for (const via of ['another socket', 'long-polling'] as const) {
      const { port, herald } = await startHerald(t);
      const { ws, clientId } = await openSession(port, t);
      ws.send([{ channel: '/meta/subscribe', clientId, subscription: '/lost', id: 's' }]);
      await ws.next('subscribed', (m) => m.id === 's');
      await herald.publish('/lost', 'pushed, never confirmed');
      await ws.next('the delivery', (m) => m.data === 'pushed, never confirmed');
      ws.close();
      await waitFor('the socket to be gone', () => herald.stats().webSockets === 0);
      const connect = { channel: '/meta/connect', clientId, id: 'c', advice: { timeout: 0 } };
      let reply;
      if (via === 'another socket') {
        const again = await RawWs.open(port);
        onCleanup(t, () => again.close());
        again.send([{ ...connect, connectionType: 'websocket' }]);
        reply = await again.next('connect reply', (m) => m.id === 'c');
      } else {
        [reply] = (await postJson(port, '/bayeux', [{ ...connect, connectionType: 'long-polling' }])).json();
      }
      assert.equal(reply.successful, false, via);
      assert.equal(reply.error, '402:connection_lost:session_closed');
      assert.equal(reply.advice.reconnect, 'handshake');
      assert.equal(herald.stats().sessions, 0);
    }
  });

  test('a connect on a new socket while the old one still holds unconfirmed deliveries ends the session (the old one died unnoticed)', async (t) => {
    const { port, herald } = await startHerald(t);
    const { ws, clientId } = await openSession(port, t);
    ws.send([{ channel: '/meta/subscribe', clientId, subscription: '/lost', id: 's' }]);
    await ws.next('subscribed', (m) => m.id === 's');
    await herald.publish('/lost', 'pushed, never confirmed');
    await ws.next('the delivery', (m) => m.data === 'pushed, never confirmed');
    const again = await RawWs.open(port);
    onCleanup(t, () => again.close());
    again.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c', advice: { timeout: 0 } }]);
    const reply = await again.next('connect reply', (m) => m.id === 'c');
    assert.equal(reply.error, '402:connection_lost:session_closed');
    assert.equal(herald.stats().sessions, 0);
  });

  test('banned between two connects: the next connect on the socket is told why (advice none), then the socket closes', async (t) => {
    const { port, herald } = await startHerald(t);
    const { ws, clientId } = await openSession(port, t);
    // No connect is held (the first was answered at once): only a reply can tell the client not to come back.
    await herald.disconnect({ session: publicIdOf(clientId), reason: 'spam', reconnect: false });
    ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c1', advice: { timeout: 0 } }]);
    const reply = await ws.next('the connect reply', (m) => m.id === 'c1');
    assert.equal(reply.error, '403:banned,spam:session_closed');
    assert.equal(reply.advice.reconnect, 'none');
    const closed = await ws.waitClosed();
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /do not come back: spam/);
  });

  test('tolerates [] keep-alives and gives Bayeux errors for bad messages', async (t) => {
    const { port } = await startHerald(t);
    const { ws } = await openSession(port, t);
    ws.send('[]');
    ws.send([{ channel: '/meta/connect', clientId: 'nobody', connectionType: 'websocket', id: 'x' }]);
    const reply = await ws.next('the error reply', (m) => m.id === 'x');
    assert.equal(reply.error, '402::session_unknown');
    assert.equal(ws.closed, undefined);
  });

  for (const [name, frame, code, reason] of [
    ['malformed JSON', '[{"channel":', 1007, /malformed JSON/],
    ['a scalar', '42', 1007, /JSON object or an array/],
    ['nested arrays', '[[{"channel":"/a"}]]', 1007, /JSON object or an array/],
  ] as const) {
    test(`closes the socket with a reason on ${name}`, async (t) => {
      const { port } = await startHerald(t);
      const ws = await RawWs.open(port);
      ws.send(frame);
      const closed = await ws.waitClosed();
      assert.equal(closed.code, code);
      assert.match(closed.reason, reason);
    });
  }

  test('closes on binary frames and oversize frames; other clients are unaffected', async (t) => {
    const { port, herald } = await startHerald(t, { maxBodyBytes: 4096 });
    const bystander = await openSession(port, t);
    bystander.ws.send([{ channel: '/meta/subscribe', clientId: bystander.clientId, subscription: '/calm', id: 's' }]);
    await bystander.ws.next('subscribed', (m) => m.id === 's');
    const binary = await RawWs.open(port);
    binary.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.equal((await binary.waitClosed()).code, 1003);
    const huge = await RawWs.open(port);
    huge.send([{ channel: '/calm', data: 'x'.repeat(10_000) }]);
    assert.equal((await huge.waitClosed()).code, 1009);
    await herald.publish('/calm', 'still here');
    await bystander.ws.next('delivery', (m) => m.data === 'still here');
  });

  test('refuses upgrades from disallowed origins and on unknown paths', async (t) => {
    const { port } = await startHerald(t, { allowedOrigins: ['https://ok.example'] });
    const refused = new WebSocket(`ws://127.0.0.1:${port}/bayeux`, { headers: { Origin: 'https://evil.example' } });
    const status = await new Promise<number>((resolve) => refused.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(status, 403);
    const ok = await RawWs.open(port, '/bayeux', { Origin: 'https://ok.example' });
    ok.close();
    const nowhere = new WebSocket(`ws://127.0.0.1:${port}/elsewhere`);
    await new Promise<void>((resolve) => nowhere.on('error', () => resolve()));
  });

  test("a hybi-08 client's Sec-WebSocket-Origin is checked as Origin is (version 8 is accepted), on Bayeux and /sub paths", async (t) => {
    const { port } = await startHerald(t, { allowedOrigins: ['https://ok.example'], paths: ['/ws'] });
    for (const path of ['/ws', '/sub/room']) {
      for (const [origin, status] of [['https://evil.example', 403], ['https://ok.example', 101]] as const) {
        const { client, answer } = await ByteClient.open(port, { 'Sec-WebSocket-Version': '8', 'Sec-WebSocket-Origin': origin }, 'GET', undefined, path);
        onCleanup(t, () => client.destroy());
        assert.equal(answer.status, status, `${origin} on ${path}`);
      }
    }
  });

  test('drops a peer that stops answering pings', async (t) => {
    const { port, herald } = await startHerald(t, { pingIntervalMs: 100 });
    // A raw socket that completes the upgrade and then never reads or answers anything.
    const socket = connect(port, '127.0.0.1');
    onCleanup(t, () => socket.destroy());
    socket.on('error', () => {});
    socket.write('GET /bayeux HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    await waitFor('the upgrade', () => herald.stats().webSockets === 1);
    await waitFor('the silent peer to be dropped', () => herald.stats().webSockets === 0, 5000);
  });

  test('keeps a peer that answers every ping, though it sends nothing else, and one that goes on talking', async (t) => {
    const { port, herald } = await startHerald(t, { pingIntervalMs: 100 });
    // ws answers pings by itself: a Bayeux socket (and a /sub one) that is only kept alive, for several periods.
    const quiet = await RawWs.open(port);
    onCleanup(t, () => quiet.close());
    const sub = new WebSocket(`ws://127.0.0.1:${port}/sub/room`);
    onCleanup(t, () => sub.close());
    await new Promise((resolve) => sub.once('open', resolve));
    const { ws: talking, clientId } = await openSession(port, t);
    let pings = 0;
    quiet.ws.on('ping', () => {
      pings++;
      // A message now and then from the other: what it sends counts as life too.
      talking.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: `c${pings}`, advice: { timeout: 0 } }]);
    });
    await waitFor('five pings', () => pings >= 5, 5000);
    assert.equal(herald.stats().webSockets, 3);
    assert.equal(quiet.closed, undefined);
    assert.equal(sub.readyState, WebSocket.OPEN);
    await talking.next('the latest connect reply', (m) => m.id === `c${pings}`);
  });

  test('keeps a live peer whose frames a slow handler holds back (reading paused) past several pings', async (t) => {
    const { port, herald } = await startHerald(t, { pingIntervalMs: 50 });
    herald.use({ incoming: (m) => (m.channel === '/slow' ? new Promise((resolve) => setTimeout(() => resolve(m), 250)) : m) });
    const { ws, clientId } = await openSession(port, t);
    // MAX_WAITING_FRAMES frames, each held 250 ms: the socket is not read for about 250 ms, five ping periods.
    for (let i = 0; i < MAX_WAITING_FRAMES; i++) ws.send([{ channel: '/slow', clientId, data: i, id: `p${i}` }]);
    for (let i = 0; i < MAX_WAITING_FRAMES; i++) await ws.next(`publish reply ${i}`, (m) => m.id === `p${i}`);
    assert.equal(ws.closed, undefined, 'the live client was kept');
    assert.equal(herald.stats().webSockets, 1);
  });

  test('closes a socket whose send buffer keeps growing', async (t) => {
    const { port, herald } = await startHerald(t, { maxBufferedBytes: 64 * 1024 });
    const reader = await openSession(port, t);
    reader.ws.send([{ channel: '/meta/subscribe', clientId: reader.clientId, subscription: '/flood', id: 's' }]);
    await reader.ws.next('subscribed', (m) => m.id === 's');
    reader.ws.ws.pause(); // stop reading: the server's send buffer fills
    onCleanup(t, () => reader.ws.ws.terminate()); // a paused client never sees the close
    const payload = 'x'.repeat(16 * 1024);
    for (let i = 0; i < 2000 && herald.stats().webSockets > 0; i++) {
      await herald.publish('/flood', payload);
      if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor('the slow socket to be closed', () => herald.stats().webSockets === 0);
  });

  test('timesync is answered on meta replies', async (t) => {
    const { port } = await startHerald(t);
    const ws = await RawWs.open(port);
    onCleanup(t, () => ws.close());
    const tc = Date.now();
    ws.send([{ ...HANDSHAKE, ext: { timesync: { tc, l: 0, o: 0 } } }]);
    const reply = await ws.next('handshake', (m) => m.id === 'h');
    assert.equal(reply.ext.timesync.tc, tc);
    assert.ok(Math.abs(reply.ext.timesync.ts - Date.now()) < 5000);
    assert.ok(reply.ext.timesync.p >= 0);
    assert.equal(typeof reply.ext.timesync.a, 'number');
  });

  test('frames sent at once are answered in the order sent, whether a frame is handled in its turn (connect) or waits (subscribe, an async extension)', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    // The second subscribe waits a while in an extension: what follows it must still wait for it.
    herald.use({ incoming: async (m) => (m.subscription === '/slow' ? new Promise((resolve) => setTimeout(() => resolve(m), 50)) : m) });
    const { ws, clientId } = await openSession(port, t);
    const connect = (id: string) => ({ channel: '/meta/connect', clientId, connectionType: 'websocket', id, advice: { timeout: 0 } });
    for (const frame of [
      [{ channel: '/meta/subscribe', clientId, subscription: '/fast', id: 's1' }],
      [connect('c1')],
      [{ channel: '/meta/subscribe', clientId, subscription: '/slow', id: 's2' }],
      [connect('c2')],
      [connect('c3')],
    ]) {
      ws.send(frame);
    }
    await ws.next('the last reply', (m) => m.id === 'c3');
    assert.deepEqual(
      ws.frames.flat().map((m) => m.id).filter((id) => id !== 'h' && id !== 'c0'),
      ['s1', 'c1', 's2', 'c2', 'c3'],
    );
    assert.equal(ws.frames.flat().every((m) => m.successful === true), true);
  });

  test('replies (one frame each, header and payload in one write) read back whole at every length boundary of the frame header', async (t) => {
    const { port, herald } = await startHerald(t);
    let pad = '';
    herald.use({ outgoing: (m) => (m.channel === '/meta/subscribe' ? { ...m, ext: { pad } } : m) });
    const { ws, clientId } = await openSession(port, t);
    const subscribe = (id: string) => {
      ws.send([{ channel: '/meta/subscribe', clientId, subscription: '/pad', id }]);
      return ws.next(`subscribe reply ${id}`, (m) => m.id === id);
    };
    // Every reply's body the same but for the pad (ids of one length).
    const base = Buffer.byteLength(JSON.stringify([await subscribe('sb')]));
    for (const [i, frameLength] of [125, 126, 127, 65_535, 65_536, 70_000].entries()) {
      // Two bytes of UTF-8 each, so that bytes and characters differ: 'é'.
      const padBytes = frameLength - base;
      pad = 'é'.repeat(Math.floor(padBytes / 2)) + 'x'.repeat(padBytes % 2);
      const reply = await subscribe(`s${i}`);
      assert.equal(reply.ext.pad, pad);
      assert.equal(Buffer.byteLength(JSON.stringify([reply])), frameLength);
    }
  });

  test('disabled, it is neither offered nor accepted', async (t) => {
    const { port } = await startHerald(t, { transports: ['long-polling'] });
    const refused = new WebSocket(`ws://127.0.0.1:${port}/bayeux`);
    const status = await new Promise<number>((resolve) => refused.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(status, 400);
  });
});

describe('shared frames', () => {
  test('one-message frames read back whole at every length boundary of the frame header', async (t) => {
    const { port, herald } = await startHerald(t);
    const { ws, clientId } = await openSession(port, t);
    ws.send([{ channel: '/meta/subscribe', clientId, subscription: '/sizes', id: 's' }]);
    await ws.next('subscribed', (m) => m.id === 's');
    const overhead = JSON.stringify([{ channel: '/sizes', data: '' }]).length;
    for (const frameLength of [125, 126, 127, 65_535, 65_536, 70_000]) {
      const data = 'x'.repeat(frameLength - overhead);
      await herald.publish('/sizes', data);
      const got = await ws.next(`the ${frameLength}-byte frame`, (m) => m.channel === '/sizes' && m.data.length === data.length);
      assert.equal(got.data, data);
    }
  });
});
