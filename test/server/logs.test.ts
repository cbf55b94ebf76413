/**
 * Structured logs: one JSON line per lifecycle event at debug, nothing of it above; never a
 * clientId, a token, a key or a password; a client that goes away is no error.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { test } from 'node:test';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import type { PublishRequest } from '../../src/core/engine.js';
import { redactHeaders, redactUrl } from '../../src/core/redact.js';
import { createHerald } from '../../src/server/create-herald.js';
import { createLogger } from '../../src/server/logger.js';
import type { LogLevel } from '../../src/server/logger.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream } from '../helpers/http.js';
import { RawWs } from '../helpers/raw-ws.js';
import { waitFor } from '../helpers/wait.js';

async function run(t: { after(fn: () => unknown): void }, level: LogLevel) {
  const lines: any[] = [];
  const logger = createLogger(level, (line) => lines.push(JSON.parse(line)));
  const { port, herald } = await startHerald(t, { logger });
  const ws = await RawWs.open(port, '/bayeux');
  ws.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: '1' }]);
  const { clientId } = await ws.next('handshake reply', (m) => m.channel === '/meta/handshake');
  ws.send([{ channel: '/meta/disconnect', clientId, id: '2' }]);
  await ws.next('disconnect reply', (m) => m.channel === '/meta/disconnect');
  ws.ws.close();
  const stream = await openStream(port, '/sub/logged', { Accept: 'text/event-stream' }, t);
  await waitFor('the stream session', () => herald.sessionCount === 1);
  stream.req.destroy();
  await waitFor('everything closed', () => herald.sessionCount === 0 && herald.stats().webSockets === 0);
  return { lines, clientId };
}

test('at debug: connections, sessions, WebSockets and streams opening and closing, with their reasons', async (t) => {
  const { lines, clientId } = await run(t, 'debug');
  await waitFor('the close lines', () => lines.some((l) => l.message === 'websocket closed') && lines.some((l) => l.message === 'stream closed'));
  const events = lines.map((l) => l.message);
  for (const event of ['connection opened', 'websocket opened', 'session opened', 'session closed', 'websocket closed', 'stream opened', 'stream closed', 'connection closed']) {
    assert.ok(events.includes(event), `${event} in ${events.join(', ')}`);
  }
  for (const line of lines) {
    assert.equal(line.level, 'debug');
    assert.match(line.time, /^\d{4}-\d\d-\d\dT/);
  }
  assert.deepEqual(
    lines.filter((l) => l.message === 'session closed').map((l) => l.reason).sort(),
    ['client', 'client'],
    'the Bayeux goodbye and the stream the client cut',
  );
  // A WebSocket's socket forgets Node's copy of its peer address, except where this line reads it.
  await waitFor('every connection closed', () => lines.filter((l) => l.message === 'connection closed').length === lines.filter((l) => l.message === 'connection opened').length);
  assert.deepEqual([...new Set(lines.filter((l) => l.message === 'connection closed').map((l) => l.peer))], ['127.0.0.1']);
  const wsClosed = lines.find((l) => l.message === 'websocket closed');
  assert.equal(wsClosed.path, '/bayeux');
  assert.equal(typeof wsClosed.code, 'number');
  assert.equal(lines.find((l) => l.message === 'stream opened').path, '/sub/logged');
  assert.ok(!JSON.stringify(lines).includes(clientId), 'a clientId is a credential: never logged');
});

test('at info: none of it', async (t) => {
  const { lines } = await run(t, 'info');
  assert.deepEqual(lines, []);
});

test('one redaction for URLs and headers: passwords, tokens and keys never pass, the rest does', () => {
  assert.equal(redactUrl('redis://:p@ss@cache:6379/2'), 'redis://:***@cache:6379/2', 'a password holding @');
  assert.equal(redactUrl('rediss://herald:hunter2@cache'), 'rediss://herald:***@cache');
  assert.equal(redactUrl('https://TOKEN@api.example/x'), 'https://***@api.example/x');
  assert.equal(redactUrl('redis://cache:6379'), 'redis://cache:6379');
  assert.equal(redactUrl('/sub/a?since=5&token=eyJ.a.b&x=1'), '/sub/a?since=5&token=***&x=1');
  assert.equal(redactUrl('/dashboard?key=admin-key-0123456789'), '/dashboard?key=***');
  assert.equal(redactUrl('/cb?ACCESS_TOKEN=abc#frag'), '/cb?ACCESS_TOKEN=***#frag');
  assert.equal(redactUrl('/sub/token=x/a?monkey=1'), '/sub/token=x/a?monkey=1', 'only parameters of those names');
  assert.equal(redactUrl('failed: connect to redis://u:pw@h:1 refused'), 'failed: connect to redis://u:***@h:1 refused');
  assert.deepEqual(redactHeaders({ authorization: 'Bearer abc', Cookie: 'herald_token=abc; a=b', host: 'h', referer: 'https://h/sub/a?token=abc' }), {
    authorization: '***',
    Cookie: '***',
    host: 'h',
    referer: 'https://h/sub/a?token=***',
  });
});

test('a failing request is logged with its URL redacted; a client that aborts its body is only a debug line', async (t) => {
  const lines: any[] = [];
  const logger = createLogger('debug', (line) => lines.push(JSON.parse(line)));
  class FailingEngine extends MemoryEngine {
    override async publish(request: PublishRequest): Promise<never> {
      throw new Error(`cannot publish on ${request.channel}`);
    }
  }
  // Served on a server of the test's own, to know when a request has reached Herald.
  const server = createServer();
  const herald = createHerald({ logger, engine: new FailingEngine() });
  herald.attach(server);
  let requests = 0;
  server.prependListener('request', () => requests++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    await herald.close();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  const secret = 'eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl';
  const failed = await httpRequest(port, { method: 'POST', path: `/pub/a?access_token=${secret}&key=${secret}`, body: 'hello' });
  assert.equal(failed.status, 500);
  const logged = await waitFor('the failure logged', () => lines.find((l) => l.message === 'request failed'));
  assert.equal(logged.url, '/pub/a?access_token=***&key=***');

  // A client that sends part of a body and goes away, as anyone can at will.
  const errorsBefore = lines.filter((l) => l.level === 'error' || l.level === 'warn').length;
  for (const path of [`/pub/b?access_token=${secret}`, `/bayeux?token=${secret}`]) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nCookie: herald_token=${secret}\r\nContent-Length: 1000\r\n\r\n[{"chan`);
    const before = requests;
    await waitFor('the request to reach Herald', () => requests > before);
    await new Promise((resolve) => setImmediate(resolve));
    socket.destroy();
  }
  await waitFor('both connections closed', () => lines.filter((l) => l.message === 'connection closed').length >= 3);
  assert.deepEqual(lines.filter((l) => l.level === 'error' || l.level === 'warn').slice(errorsBefore), [], 'no error or warning for a client that went away');
  assert.ok(!JSON.stringify(lines).includes(secret), 'no token in any line');
  assert.ok(!JSON.stringify(lines).includes('c2VjcmV0'), 'nor any part of one');
});
