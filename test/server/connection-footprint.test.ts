/**
 * What a connection costs the server while it waits: an idle subscriber must not keep objects it no
 * longer needs (its upgrade request, headers, closures over them), and a storm of new connections
 * must not overflow the listen queue (each dropped SYN costs its client a retransmission, ≥ 1 s).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:http';
import { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import { createHerald } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { RawWs } from '../helpers/raw-ws.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
setFlagsFromString('--allow-natives-syntax');
/** Whether V8 keeps `object`'s properties in fast mode (a dictionary costs ~1.6 KB for a socket). */
const hasFastProperties = runInNewContext('(object) => %HasFastProperties(object)') as (object: object) => boolean;

/** A server-side connection, with the parser Node's HTTP server gives it (null once released). */
type ServerSocket = Socket & { parser?: unknown };

/** GET `path` as an event stream; resolves with the response once its head arrived. */
function openEventStream(port: number, path: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, headers: { Accept: 'text/event-stream' } }, resolve).on('error', reject).end();
  });
}

/** Whether every one of `refs` has been collected, after full collections (finalisers run between them). */
async function collected(refs: readonly WeakRef<object>[]): Promise<boolean> {
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return refs.every((ref) => ref.deref() === undefined);
}

describe('connection footprint', () => {
  test('an open WebSocket, /sub or Bayeux with a held connect, keeps nothing of its upgrade request', async (t) => {
    const server = createServer();
    const herald = createHerald({ timeoutMs: 30_000 });
    herald.attach(server);
    const requests: WeakRef<object>[] = [];
    // Not even its headers: with no hook or extension to read them, nothing will.
    server.prependListener('upgrade', (req: IncomingMessage) => requests.push(new WeakRef(req), new WeakRef(req.headers)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    onCleanup(t, async () => {
      await herald.close();
      server.close();
    });

    const sub = new WebSocket(`ws://127.0.0.1:${port}/sub/room`);
    onCleanup(t, () => sub.close());
    const received: string[] = [];
    sub.on('message', (data) => received.push(data.toString()));
    await withTimeout('the /sub WebSocket to open', new Promise((resolve) => sub.once('open', resolve)));
    const bayeux = await RawWs.open(port);
    onCleanup(t, () => bayeux.close());
    bayeux.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h' }]);
    const { clientId } = await bayeux.next('handshake reply', (m) => m.id === 'h');
    bayeux.send([{ channel: '/meta/subscribe', clientId, subscription: '/room', id: 's' }]);
    await bayeux.next('subscribe reply', (m) => m.id === 's');
    bayeux.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c0' }]);
    await bayeux.next('first connect reply', (m) => m.id === 'c0');
    bayeux.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c1' }]);
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    await waitFor('the /sub subscription', async () => {
      await herald.publish('/room', 'hello');
      return received.length > 0;
    });

    assert.equal(requests.length, 4);
    assert.equal(await collected(requests), true, 'the upgrade requests or their headers are still reachable from the open sockets');
    // Both still work.
    await herald.publish('/room', 'after');
    await waitFor('the /sub delivery', () => received.some((text) => text.includes('after')));
    await bayeux.next('the Bayeux delivery', (m) => m.data === 'after');
  });

  test('an open /sub WebSocket leaves one error listener on its socket (ws’s): the upgrade’s guard is removed', async (t) => {
    const server = createServer();
    const herald = createHerald({ timeoutMs: 30_000 });
    herald.attach(server);
    const sockets: ServerSocket[] = [];
    server.prependListener('connection', (socket: ServerSocket) => sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    onCleanup(t, async () => {
      await herald.close();
      server.close();
    });
    const sub = new WebSocket(`ws://127.0.0.1:${port}/sub/room`);
    onCleanup(t, () => sub.close());
    const received: string[] = [];
    sub.on('message', (data) => received.push(data.toString()));
    await withTimeout('the /sub WebSocket to open', new Promise((resolve) => sub.once('open', resolve)));
    await waitFor('the /sub subscription', async () => {
      await herald.publish('/room', 'hello');
      return received.length > 0;
    });
    // Two listeners are an array per connection; a socket error still ends the connection (ws's listener).
    assert.equal(sockets[0]!.listenerCount('error'), 1);
    const closed = new Promise((resolve) => sub.once('close', resolve));
    sockets[0]!.emit('error', new Error('simulated'));
    await withTimeout('the WebSocket to close after a socket error', closed);
    assert.equal(sockets[0]!.destroyed, true);
  });

  test('an open event stream takes its connection without turning the socket into a dictionary', async (t) => {
    const server = createServer();
    const herald = createHerald({ timeoutMs: 30_000 });
    herald.attach(server);
    const sockets: ServerSocket[] = [];
    server.prependListener('connection', (socket: ServerSocket) => sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    onCleanup(t, async () => {
      await herald.close();
      server.close();
    });
    const body = await openEventStream(port, '/sub/room');
    onCleanup(t, () => body.destroy());
    await waitFor('the stream to be taken from Node', () => sockets.length === 1 && sockets[0]!.parser === null);
    assert.equal(sockets[0]!.on, Socket.prototype.on, 'Node’s per-connection wrapper is released');
    assert.equal(hasFastProperties(sockets[0]!), true, 'the taken socket’s properties became a dictionary');
    const received = new Promise<string>((resolve) => body.on('data', (chunk: Buffer) => chunk.includes('data:') && resolve(chunk.toString())));
    await herald.publish('/room', 'still works');
    assert.match(await withTimeout('the delivery', received), /still works/);
  });

  test('a held long-poll keeps none of its body reader: no listeners left on its request', async (t) => {
    const server = createServer();
    const herald = createHerald({ timeoutMs: 30_000 });
    herald.attach(server);
    const requests: IncomingMessage[] = [];
    server.prependListener('request', (req: IncomingMessage) => requests.push(req));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const aborted = new AbortController();
    onCleanup(t, async () => {
      aborted.abort();
      await herald.close();
      server.close();
    });
    const post = async (messages: unknown[]) => (await fetch(`http://127.0.0.1:${port}/bayeux`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(messages), signal: aborted.signal })).json() as Promise<Record<string, unknown>[]>;
    const [handshake] = await post([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]);
    const clientId = handshake!.clientId;
    await post([{ channel: '/meta/connect', clientId, connectionType: 'long-polling' }]);
    const held = post([{ channel: '/meta/connect', clientId, connectionType: 'long-polling' }]).catch(() => undefined);
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    const req = requests.at(-1)!;
    assert.deepEqual([req.listenerCount('error'), req.listenerCount('close'), req.listenerCount('data'), req.listenerCount('end')], [0, 0, 0, 0]);
    aborted.abort();
    await held;
  });

  test('listen() asks for a listen backlog above Node’s default 511, so a reconnect storm is not dropped', async (t) => {
    const { port } = await startHerald(t);
    let listing: string;
    try {
      listing = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
    } catch {
      t.skip('ss (iproute2) is not installed');
      return;
    }
    // For a listening socket, Send-Q is its backlog (as the kernel capped it at somaxconn).
    const backlog = Number(listing.trim().split(/\s+/)[2]);
    const somaxconn = Number(execFileSync('cat', ['/proc/sys/net/core/somaxconn'], { encoding: 'utf8' }));
    assert.equal(backlog, Math.min(65_535, somaxconn));
    assert.ok(backlog > 511, `backlog ${backlog}`);
  });
});
