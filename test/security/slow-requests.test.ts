/**
 * A client that trickles its request (slowloris) cannot hold a connection: past
 * --request-timeout it gets 408 and is cut, counted under limits.request_timeout. Held
 * responses are not requests: a long-poll may be held for longer.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { startHerald } from '../helpers/herald.js';
import { httpRequest } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';

async function trickle(port: number, lines: string[]): Promise<{ answer: string; elapsedMs: number }> {
  const started = performance.now();
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  socket.on('error', () => {});
  let sent = 0;
  // One line every 100 ms, never the end of the request.
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write(lines[Math.min(sent++, lines.length - 1)]!);
  }, 100);
  await once(socket, 'close');
  clearInterval(timer);
  return { answer, elapsedMs: performance.now() - started };
}

describe('slow requests', () => {
  test('headers or a body trickled past the request timeout get 408 and the connection is cut', async (t) => {
    const { port } = await startHerald(t, { requestTimeoutMs: 500 });
    const headers = await trickle(port, ['GET /health HTTP/1.1\r\n', 'Host: x\r\n', 'X-Slow: 1\r\n']);
    assert.match(headers.answer, /^HTTP\/1\.1 408 /);
    assert.ok(headers.elapsedMs < 5000, `cut after ${headers.elapsedMs} ms`);
    const body = await trickle(port, ['POST /pub/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n', '"', 'a']);
    assert.match(body.answer, /^HTTP\/1\.1 408 /);
    const health = (await httpRequest(port, { path: '/health' })).json();
    assert.equal(health.limits.request_timeout, 2);
  });

  test('a held long-poll outlasts the request timeout', async (t) => {
    const { port } = await startHerald(t, { requestTimeoutMs: 300, timeoutMs: 1200 });
    const client = new RawBayeux(port);
    await client.open();
    const held = await client.connect();
    assert.equal(held.status, 200);
    assert.ok(held.elapsedMs >= 1000, `held ${held.elapsedMs} ms`);
    assert.equal(held.json()[0].successful, true);
  });
});
