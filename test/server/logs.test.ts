/** Structured logs: one JSON line per lifecycle event at debug, nothing of it above; never a clientId. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/server/logger.js';
import type { LogLevel } from '../../src/server/logger.js';
import { startHerald } from '../helpers/herald.js';
import { openStream } from '../helpers/http.js';
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
