/**
 * What several messages in one flush cost on the wire: one write per socket, whatever the
 * transport, and with a write delay, one write per socket per window.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Socket } from 'node:net';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { Herald } from '../../src/server/create-herald.js';
import { MAX_BATCH_FRAME_BYTES } from '../../src/transports/ws-frames.js';
import { onCleanup } from '../helpers/cleanup.js';
import { openStream } from '../helpers/http.js';
import { startHerald } from '../helpers/herald.js';
import { RawWs } from '../helpers/raw-ws.js';
import { waitFor } from '../helpers/wait.js';

/** A TCP handle's write calls, where every write to a socket ends, through its stream or straight from writeToSocket. */
const HANDLE_WRITES = ['writeBuffer', 'writev', 'writeUtf8String', 'writeLatin1String', 'writeAsciiString', 'writeUcs2String'] as const;
type TcpHandle = { getsockname(out: { port?: number }): number } & Record<(typeof HANDLE_WRITES)[number], (...args: unknown[]) => number>;
const tcpHandlePrototype = (process as unknown as { binding(name: string): { TCP: { prototype: TcpHandle } } }).binding('tcp_wrap').TCP.prototype;

/** Counts the writes (system calls asked of libuv) the server makes on its side of its connections from now on. */
function serverWrites(t: TestContext, port: number): () => number {
  const mocks = HANDLE_WRITES.map((name) => t.mock.method(tcpHandlePrototype, name));
  const onServerSide = (handle: TcpHandle) => {
    const address: { port?: number } = {};
    handle.getsockname(address);
    return address.port === port;
  };
  return () => mocks.reduce((sum, mock) => sum + mock.mock.calls.filter((call) => onServerSide(call.this as TcpHandle)).length, 0);
}

/** Three messages published in one tick (they reach the sessions together, as in a burst). */
const burst = (herald: Herald, channel: string) => Promise.all([1, 2, 3].map((n) => herald.publish(channel, { n })));

async function bayeuxSubscriber(t: TestContext, port: number, herald: Herald, channel: string) {
  const ws = await RawWs.open(port);
  onCleanup(t, () => ws.close());
  ws.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h' }]);
  const { clientId } = await ws.next('handshake reply', (m) => m.id === 'h');
  ws.send([{ channel: '/meta/subscribe', clientId, subscription: channel, id: 's' }]);
  await ws.next('subscribe reply', (m) => m.id === 's');
  ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c0', advice: { timeout: 0 } }]);
  await ws.next('first connect reply', (m) => m.id === 'c0');
  ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c1' }]);
  await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
  return ws;
}

async function subSocket(t: TestContext, port: number, herald: Herald, channel: string) {
  const ws = await RawWs.open(port, `/sub${channel}`);
  onCleanup(t, () => ws.close());
  // Live once a first message comes through.
  await waitFor('the subscription', () => herald.stats().patterns === 1);
  await herald.publish(channel, { n: 0 });
  await ws.next('the first message', (m) => m.channel === channel);
  ws.frames.length = 0;
  return ws;
}

const received = (ws: RawWs, channel: string) => ws.frames.flat().filter((m) => m.channel === channel).map((m) => m.data.n);

describe('a burst leaves each socket in one write', () => {
  test('Bayeux over WebSocket: one frame holding the three messages, in one write', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const ws = await bayeuxSubscriber(t, port, herald, '/burst');
    const writes = serverWrites(t, port);
    const framesBefore = ws.frames.length;
    await burst(herald, '/burst');
    await waitFor('three deliveries', () => received(ws, '/burst').length === 3);
    assert.deepEqual(received(ws, '/burst'), [1, 2, 3]);
    assert.deepEqual(
      ws.frames.slice(framesBefore).map((frame) => frame.map((m: { data: { n: number } }) => m.data.n)),
      [[1, 2, 3]],
    );
    assert.equal(writes(), 1);
  });

  test('Bayeux over WebSocket: a batch past 64 KiB is split into frames no larger, in order, still in one write', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const ws = await bayeuxSubscriber(t, port, herald, '/big');
    const sizes: number[] = [];
    ws.ws.on('message', (data: Buffer) => sizes.push(data.length));
    const writes = serverWrites(t, port);
    const framesBefore = ws.frames.length;
    // 30,000 bytes each: two share a frame, a third would pass MAX_BATCH_FRAME_BYTES; the last,
    // larger than the bound alone, gets a frame of its own, as it did before batches.
    const pad = (n: number) => 'x'.repeat(n);
    await Promise.all([
      herald.publish('/big', { n: 1, pad: pad(30_000) }),
      herald.publish('/big', { n: 2, pad: pad(30_000) }),
      herald.publish('/big', { n: 3, pad: pad(30_000) }),
      herald.publish('/big', { n: 4, pad: pad(70_000) }),
      herald.publish('/big', { n: 5, pad: '' }),
    ]);
    await waitFor('five deliveries', () => received(ws, '/big').length === 5);
    assert.deepEqual(received(ws, '/big'), [1, 2, 3, 4, 5]);
    assert.deepEqual(
      ws.frames.slice(framesBefore).map((frame) => frame.map((m: { data: { n: number } }) => m.data.n)),
      [[1, 2], [3], [4], [5]],
    );
    assert.ok(sizes.slice(0, 2).every((size) => size <= MAX_BATCH_FRAME_BYTES), `frame sizes ${sizes.join(', ')}`);
    assert.equal(writes(), 1);
  });

  test('GET /sub over WebSocket: a frame per message, all in one write', async (t) => {
    const { port, herald } = await startHerald(t);
    const ws = await subSocket(t, port, herald, '/burst');
    const writes = serverWrites(t, port);
    await burst(herald, '/burst');
    await waitFor('three deliveries', () => received(ws, '/burst').length === 3);
    assert.deepEqual(received(ws, '/burst'), [1, 2, 3]);
    assert.equal(writes(), 1);
  });

  test('GET /sub as server-sent events: an event per message, in one chunk, in one write', async (t) => {
    const { port, herald } = await startHerald(t);
    const sub = await openStream(port, '/sub/burst', { Accept: 'text/event-stream' }, t);
    await waitFor('the subscription', () => herald.stats().patterns === 1);
    const data = () => [...sub.text().matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!).data.n);
    await herald.publish('/burst', { n: 0 });
    await waitFor('the first event', () => data().length === 1);
    const writes = serverWrites(t, port);
    await burst(herald, '/burst');
    await waitFor('three more events', () => data().length === 4);
    assert.deepEqual(data(), [0, 1, 2, 3]);
    assert.equal(writes(), 1);
  });

  test('an HTTP/1.0 event stream (no chunked encoding) carries the same events, unframed, and ends cleanly', async (t) => {
    const { port, herald } = await startHerald(t);
    const socket = new Socket();
    onCleanup(t, () => socket.destroy());
    socket.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.write('GET /sub/old HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n');
    await waitFor('the subscription', () => herald.stats().patterns === 1);
    await waitFor('the stream to open', () => text.includes('retry:'));
    await burst(herald, '/old');
    await waitFor('three events', () => (text.match(/^data: /gm) ?? []).length === 3);
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.doesNotMatch(text, /transfer-encoding: chunked/i);
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    assert.match(body, /^id: \S+\ndata: \{.*"n":1.*\}\n\nid: \S+\ndata: \{.*"n":2.*\}\n\nid: \S+\ndata: \{.*"n":3.*\}\n\n$/m, 'events back to back, with no chunk sizes among them');
    const ended = once(socket, 'end');
    await herald.close();
    await ended;
  });
});

describe('--write-delay', () => {
  test('messages published in separate ticks within the window leave in one write per socket', async (t) => {
    // Long enough that the two publishes surely fall in one window, even on a busy machine.
    const { port, herald } = await startHerald(t, { writeDelayMs: 300 });
    const ws = await subSocket(t, port, herald, '/gathered');
    const writes = serverWrites(t, port);
    await herald.publish('/gathered', { n: 1 });
    await new Promise((resolve) => setImmediate(resolve));
    await herald.publish('/gathered', { n: 2 });
    await waitFor('two deliveries', () => received(ws, '/gathered').length === 2);
    assert.deepEqual(received(ws, '/gathered'), [1, 2]);
    assert.equal(writes(), 1);
  });
});
