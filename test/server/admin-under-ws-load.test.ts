/**
 * Operators' doors while WebSockets are busy: some 2,000 sockets (Bayeux and `/sub`), a few of
 * them slow consumers that read nothing, and sessions whose queues are full. /metrics, /health,
 * /ready, the dashboard and inspection must answer promptly and tell the truth; the WebSocket
 * counts (open sockets, refusals for size, slow consumers cut, lifecycle lines) must match what
 * the clients saw, down to 0 once they are gone, however they went.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { createLogger } from '../../src/server/logger.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, postJson } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { frame, OP } from '../helpers/ws-bytes.js';

const BAYEUX = 1000;
const SUB = 950;
const SLOW = 20;
/** Answered within this, on a loaded machine shared with other work (idle: a few ms, /metrics ~100 ms). */
const PROMPT_MS = 2000;

/** The value of one sample of the Prometheus text. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

async function openWs(port: number, path: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  ws.on('error', () => {});
  await withTimeout(`${path} to open`, once(ws, 'open'));
  return ws;
}

/** A Bayeux client over WebSocket, subscribed to `channel` with a connect held: resolves once subscribed. */
async function openBayeuxWs(port: number, channel: string): Promise<WebSocket> {
  const ws = await openWs(port, '/bayeux');
  ws.send(JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: '1' }]));
  const [[{ clientId }]] = (await once(ws, 'message')).map((data) => JSON.parse(String(data)));
  ws.send(JSON.stringify([
    { channel: '/meta/subscribe', clientId, subscription: channel, id: '2' },
    { channel: '/meta/connect', clientId, connectionType: 'websocket', id: '3' },
  ]));
  await once(ws, 'message');
  return ws;
}

/** Resolves once `socket` has received data satisfying `check` (what it received so far). */
function received(socket: Socket, what: string, check: (text: string) => boolean): Promise<void> {
  let text = '';
  return withTimeout(what, new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!check(text)) return;
      socket.off('data', onData);
      resolve();
    };
    socket.on('data', onData);
  }));
}

/**
 * A client that stops reading once subscribed to `/slow` (Bayeux over WebSocket, or `/sub`), in
 * bytes: a WebSocket library would resume its socket. Resolves once subscribed (a paused socket
 * never sees the server cut it: the server's counts tell).
 */
async function openSlow(port: number, bayeux: boolean): Promise<{ socket: Socket }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const upgrade = `GET ${bayeux ? '/bayeux' : '/sub/slow'} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  socket.write(upgrade);
  if (!bayeux) {
    await received(socket, 'the 101', (text) => text.includes('\r\n\r\n'));
  } else {
    socket.write(frame(OP.text, JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: '1' }])));
    let clientId = '';
    await received(socket, 'the handshake reply', (text) => {
      clientId = /"clientId":"([^"]+)"/.exec(text)?.[1] ?? '';
      return clientId !== '';
    });
    socket.write(frame(OP.text, JSON.stringify([
      { channel: '/meta/subscribe', clientId, subscription: '/slow', id: '2' },
      { channel: '/meta/connect', clientId, connectionType: 'websocket', id: '3' },
    ])));
    await received(socket, 'the subscribe reply', (text) => text.includes('/meta/subscribe'));
  }
  socket.pause();
  return { socket };
}

const DOORS = ['/metrics', '/health', '/ready', '/dashboard/stats', '/dashboard', '/admin/nodes', '/admin/channels', '/admin/users/nobody/sessions'];

/** Asks every operator's door once: each must answer 200 within PROMPT_MS. Returns the bodies. */
async function askEveryDoor(port: number): Promise<Map<string, string>> {
  const bodies = new Map<string, string>();
  for (const path of DOORS) {
    const started = performance.now();
    const res = await httpRequest(port, { path });
    const ms = performance.now() - started;
    assert.equal(res.status, 200, `${path}: ${res.text.slice(0, 200)}`);
    assert.ok(ms < PROMPT_MS, `${path} took ${ms.toFixed(0)} ms`);
    bodies.set(path, res.text);
  }
  return bodies;
}

describe('operators doors while WebSockets are busy', () => {
  test('answer promptly and count right with 2,000 sockets, slow consumers among them, and full queues', async (t) => {
    const lines: any[] = [];
    const logger = createLogger('debug', (line) => lines.push(JSON.parse(line)));
    const { herald, port } = await startHerald(t, { maxQueue: 20, slowConsumer: 'drop-oldest', maxSessionsPerAddress: 0, maxBufferedBytes: 64 * 1024, logger });
    // Long-poll sessions between connects: their queues fill to the limit.
    for (let i = 0; i < 5; i++) {
      const client = new RawBayeux(port);
      await client.handshake({ ext: { herald: { ids: true } } });
      await client.connect({ advice: { timeout: 0 } });
      await client.subscribe('/idle');
    }
    const readers: WebSocket[] = [];
    for (let i = 0; i < BAYEUX; i += 100) readers.push(...(await Promise.all(Array.from({ length: 100 }, () => openBayeuxWs(port, '/load')))));
    for (let i = 0; i < SUB; i += 50) readers.push(...(await Promise.all(Array.from({ length: 50 }, () => openWs(port, '/sub/load')))));
    const slow = await Promise.all(Array.from({ length: SLOW }, (_, i) => openSlow(port, i % 2 === 0)));
    const sockets = BAYEUX + SUB + SLOW;
    await waitFor('every /sub session', () => herald.sessionCount === 5 + sockets);

    for (let n = 0; n < 30; n++) await herald.publish('/idle', { n });
    for (let n = 0; n < 10; n++) await herald.publish('/load', { n });

    // Slow consumers: each fills its socket and is cut, while the doors are asked again and again.
    const big = 'x'.repeat(16 * 1024);
    for (let published = 0; herald.sessionCount > 5 + sockets - SLOW; published++) {
      assert.ok(published < 1000, `slow consumers still open after ${published} messages of 16 kB`);
      await herald.publish('/slow', { big });
      // Each message flushed before the next: the socket's buffer fills, not the session's queue.
      await new Promise((resolve) => setImmediate(resolve));
      if (published % 40 === 0) await askEveryDoor(port);
    }
    // Cut a second after their close frame (they will not read it), while the doors are asked.
    await waitFor('the slow sockets gone', async () => herald.stats().webSockets === sockets - SLOW || (await askEveryDoor(port), false), 8000);
    const metrics = (await askEveryDoor(port)).get('/metrics')!;
    assert.equal(sample(metrics, 'herald_connections', '{transport="websocket"}'), sockets - SLOW);
    assert.equal(sample(metrics, 'herald_limit_refusals_total', '{limit="send_buffer"}'), SLOW, 'each slow consumer cut counted once');
    assert.equal(sample(metrics, 'herald_queue_depth_max'), 20, 'the long-polls queues are full');
    const health = JSON.parse((await httpRequest(port, { path: '/health' })).text);
    assert.equal(health.webSockets, sockets - SLOW);
    assert.equal(health.limits.send_buffer, SLOW);
    const dashboard = JSON.parse((await httpRequest(port, { path: '/dashboard/stats' })).text);
    assert.equal(dashboard.slowConsumersCut, SLOW, 'the dashboard shows the cuts beside the sessions closed');
    const nodes = JSON.parse((await httpRequest(port, { path: '/admin/nodes' })).text);
    assert.equal(nodes.nodes[0].connections.websocket, sockets - SLOW);
    const cut = lines.filter((l) => l.message === 'websocket closed');
    assert.equal(cut.length, SLOW);
    // The client never answered the close: its code is the one no close frame gives (RFC 6455 §7.1.5).
    assert.deepEqual([...new Set(cut.map((l) => l.code))], [1006]);

    for (const ws of readers) ws.close();
    await waitFor('every socket closed', () => herald.stats().webSockets === 0, 20_000);
    assert.equal(sample((await httpRequest(port, { path: '/metrics' })).text, 'herald_connections', '{transport="websocket"}'), 0);
    assert.equal(lines.filter((l) => l.message === 'websocket opened').length, sockets);
    await waitFor('every close logged', () => lines.filter((l) => l.message === 'websocket closed').length === sockets);
    const codes = new Set(lines.filter((l) => l.message === 'websocket closed').slice(SLOW).map((l) => l.code));
    assert.deepEqual([...codes], [1005], 'the readers closed with no code');
  });
});

describe('WebSocket counts, however a socket goes', () => {
  test('a message refused for its size is counted once; the socket its client never closes is cut after the close timeout, and the gauge is back to 0', async (t) => {
    const lines: any[] = [];
    const logger = createLogger('debug', (line) => lines.push(JSON.parse(line)));
    const { herald, port } = await startHerald(t, { maxBodyBytes: 1024, logger });
    const { socket } = await openSlow(port, false);
    assert.equal(herald.stats().webSockets, 1);
    socket.write(frame(OP.text, 'x'.repeat(1025)));
    // The client reads nothing and never answers the close: only the close timeout ends it.
    const refused = Date.now();
    await waitFor('the close timeout to cut the socket', () => herald.stats().webSockets === 0, 8000);
    assert.ok(Date.now() - refused >= 4000, 'cut by the close timeout, not before');
    const metrics = (await httpRequest(port, { path: '/metrics' })).text;
    assert.equal(sample(metrics, 'herald_limit_refusals_total', '{limit="body_size"}'), 1);
    assert.equal(sample(metrics, 'herald_connections', '{transport="websocket"}'), 0);
    const closedLines = lines.filter((l) => l.message === 'websocket closed');
    assert.equal(closedLines.length, 1);
    assert.equal(closedLines[0].path, '/sub/slow');
  });

  test('sockets that never answer the shutdown close are cut by terminateAll: none left counted, each logged closed once', async (t) => {
    const lines: any[] = [];
    const logger = createLogger('debug', (line) => lines.push(JSON.parse(line)));
    const { herald, port } = await startHerald(t, { shutdownGraceMs: 300, drainWindowMs: 0, logger });
    const clients = await Promise.all(Array.from({ length: 6 }, (_, i) => openSlow(port, i % 2 === 0)));
    assert.equal(herald.stats().webSockets, 6);
    const started = Date.now();
    await herald.close();
    await waitFor('every socket forgotten', () => herald.stats().webSockets === 0, 3000);
    assert.ok(Date.now() - started < 3000, 'cut at the grace, not at the close timeout');
    await waitFor('every close logged', () => lines.filter((l) => l.message === 'websocket closed').length === 6);
    assert.equal(lines.filter((l) => l.message === 'websocket opened').length, 6);
  });
});
