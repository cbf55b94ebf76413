/**
 * What the red-team pass on the Bayeux door (issue 15 part B) found, each kept caught: a client
 * that out-sends its own handling must be held back (TCP on a WebSocket, a refusal for HTTP
 * pipelining), not buffered by the server; and a per-session limit must hold against the same
 * session's concurrent requests, however slow the engine is between the check and the change.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import { createHerald } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { RawWs } from '../helpers/raw-ws.js';
import { deferred, waitFor } from '../helpers/wait.js';

describe('the Bayeux door under a hostile client', () => {
  test('a WebSocket client sending faster than its frames are handled is no longer read (TCP holds it back), then served in order', async (t) => {
    const server = createServer();
    const herald = createHerald({ transports: ['websocket', 'long-polling'], maxMessageRate: 0 });
    herald.attach(server);
    let upgraded: Socket | undefined;
    server.prependListener('upgrade', (_req, socket: Duplex) => (upgraded = socket as Socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onCleanup(t, async () => {
      await herald.close();
      server.close();
    });
    // An application's service that waits on something slow (here: until the test says).
    const slow = deferred();
    const handled: number[] = [];
    herald.service('/service/slow', async (req) => {
      await slow.promise;
      handled.push(req.data as number);
      return req.data;
    });
    const ws = await RawWs.open((server.address() as AddressInfo).port);
    t.after(() => ws.close());
    ws.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'] }]);
    const { clientId } = await ws.next('the handshake reply', (m) => m.channel === '/meta/handshake' && m.successful);

    const FRAMES = 300;
    const pad = 'x'.repeat(32 * 1024);
    let sent = 0;
    for (let i = 0; i < FRAMES; i++) {
      const frame = JSON.stringify([{ channel: '/service/slow', clientId, data: i, id: `s${i}`, pad }]);
      sent += frame.length;
      ws.send(frame);
    }
    // Before, the server read all ~10 MB into a chain of frames waiting their turn.
    const socket = upgraded!;
    await waitFor('the server to stop reading, or to have read everything', () => socket.isPaused() || socket.bytesRead >= sent);
    assert.ok(socket.isPaused(), `the server read ${socket.bytesRead} of ${sent} bytes and kept reading`);
    assert.ok(socket.bytesRead < sent / 4, `read ${socket.bytesRead} of ${sent} bytes while a few frames wait`);

    slow.resolve();
    await ws.next('the reply to the last frame', (m) => m.id === `s${FRAMES - 1}` && m.successful && m.data === undefined, 20_000);
    assert.deepEqual(handled, Array.from({ length: FRAMES }, (_, i) => i), 'every frame handled, in order');
    assert.equal(ws.closed, undefined);
  });

  test('maxSubscriptions holds against concurrent subscribes of one session while the engine is slow', async (t) => {
    /** An engine whose subscriptions wait until the test opens the gate (a Redis round trip, stretched). */
    class SlowEngine extends MemoryEngine {
      readonly gate = deferred();
      /** The subscribe requests (by their `/r/<request>/` prefix) that reached the engine. */
      readonly requests = new Set<string>();
      override async subscribe(pattern: string): Promise<void> {
        this.requests.add(pattern.split('/')[2]!);
        await this.gate.promise;
        return super.subscribe(pattern);
      }
    }
    const engine = new SlowEngine();
    const { port, herald } = await startHerald(t, { engine, maxSubscriptions: 300, maxMessageRate: 0 });
    const client = new RawBayeux(port);
    await client.handshake();

    const REQUESTS = 4;
    let answered = 0;
    const replies = Array.from({ length: REQUESTS }, (_, r) =>
      client
        .send([{ channel: '/meta/subscribe', clientId: client.clientId, subscription: Array.from({ length: 200 }, (_, i) => `/r/${r}/${i}`) }])
        .then((res) => {
          answered++;
          return res.json()[0];
        }),
    );
    // Each request is either waiting on the engine (it passed the limit) or answered.
    await waitFor('every request to reach the engine or be answered', () => engine.requests.size + answered === REQUESTS);
    engine.gate.resolve();
    const results = await Promise.all(replies);
    assert.equal(results.filter((r) => r.successful).length, 1, JSON.stringify(results.map((r) => r.error ?? 'ok')));
    for (const refused of results.filter((r) => !r.successful)) assert.equal(refused.error, '403:300:too many subscriptions for one session');
    assert.equal(herald.stats().patterns, 200);
  });

  test('HTTP pipelining: past 16 unanswered requests on one connection, the next is refused (429) and the connection closes after its answers', async (t) => {
    const server = createServer();
    const herald = createHerald({ transports: ['long-polling'], maxMessageRate: 0 });
    herald.attach(server);
    let requests = 0;
    server.prependListener('request', () => requests++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onCleanup(t, async () => {
      await herald.close();
      server.close();
    });
    const slow = deferred();
    let calls = 0;
    herald.service('/service/slow', async (req) => {
      calls++;
      await slow.promise;
      return req.data;
    });
    const port = (server.address() as AddressInfo).port;
    const client = new RawBayeux(port);
    await client.handshake();
    requests = 0;

    const PIPELINED = 40;
    const socket = connect(port, '127.0.0.1');
    t.after(() => socket.destroy());
    let received = '';
    let closed = false;
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    for (let i = 0; i < PIPELINED; i++) {
      const body = JSON.stringify([{ channel: '/service/slow', clientId: client.clientId, data: i }]);
      socket.write(`POST /bayeux HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nCookie: ${client.cookie}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    }
    await waitFor('the server to have read every request', () => requests === PIPELINED);
    slow.resolve();
    const statuses = () => [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    // Before, all 40 waited on the service together and were answered 200 on a connection kept open.
    await waitFor('every answer, or the connection closed', () => closed || statuses().length === PIPELINED);
    assert.deepEqual(statuses(), [...Array<number>(16).fill(200), 429]);
    assert.equal(calls, 16);
    assert.match(received, /more than 16 requests in flight on one connection/);
  });
});
