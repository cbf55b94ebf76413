import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { httpRequest, openStream } from '../helpers/http.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

/** Opens an event stream and collects what arrives. */
async function openEvents(port: number, path: string, t: { after(fn: () => unknown): void }) {
  const stream = await openStream(port, path, { Accept: 'text/event-stream' }, t);
  return { ...stream, events: () => [...stream.text().matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!)) };
}

describe('eventsource (Faye)', () => {
  test('streams deliveries to <endpoint>/<clientId> while connects are answered at once', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 20_000 });
    const client = new RawBayeux(port);
    await client.handshake();
    const stream = await openEvents(port, `/bayeux/${client.clientId}`, t);
    assert.equal(stream.res.statusCode, 200);
    assert.equal(stream.res.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(stream.res.headers['x-accel-buffering'], 'no');
    const res = await client.connect({ connectionType: 'eventsource' });
    assert.ok(res.elapsedMs < 1000);
    assert.deepEqual(res.json()[0].advice, { reconnect: 'retry', interval: 20_000, timeout: 0 });
    await client.subscribe('/es/**');
    await herald.publish('/es/a', 1);
    await herald.publish('/es/b/c', 2);
    await waitFor('both events', () => stream.events().flat().length === 2);
    assert.deepEqual(stream.events().flat(), [{ channel: '/es/a', data: 1 }, { channel: '/es/b/c', data: 2 }]);
    assert.match(stream.text(), /^:\s+\nretry: \d+\n\n/, 'padding and retry first');
  });

  test('carries message ids to sessions that asked for them', async (t) => {
    const { port, herald } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.handshake({ ext: { herald: { ids: true } } });
    const stream = await openEvents(port, `/bayeux/${client.clientId}`, t);
    await client.connect({ connectionType: 'eventsource' });
    await client.subscribe('/es');
    const published = await herald.publish('/es', 1);
    await waitFor('the event', () => stream.events().flat().length === 1);
    assert.deepEqual(stream.events().flat(), [{ channel: '/es', data: 1, ext: { herald: { id: published.id } } }]);
  });

  test('keeps the session alive while the stream is open, and sends heartbeats', async (t) => {
    const { port, herald } = await startHerald(t, { maxIntervalMs: 100, heartbeatMs: 50 });
    const client = new RawBayeux(port);
    await client.handshake();
    const stream = await openEvents(port, `/bayeux/${client.clientId}`, t);
    await waitFor('two heartbeats', () => (stream.text().match(/^:\n\n/gm) ?? []).length >= 2);
    assert.equal(herald.sessionCount, 1, 'not expired while streaming');
    stream.req.destroy();
    await waitFor('expiry once the stream is gone', () => herald.sessionCount === 0);
  });

  test('refuses an unknown clientId with 400', async (t) => {
    const { port } = await startHerald(t);
    const res = await httpRequest(port, { path: '/bayeux/nosuchclient', headers: { Accept: 'text/event-stream' } });
    assert.equal(res.status, 400);
    assert.match(res.json().error, /unknown clientId/);
    const bare = await httpRequest(port, { path: '/bayeux', headers: { Accept: 'text/event-stream' } });
    assert.equal(bare.status, 400);
  });

  test("a session's second stream replaces the first, which ends", async (t) => {
    const { port, herald } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.handshake();
    const first = await openEvents(port, `/bayeux/${client.clientId}`, t);
    const firstEnded = once(first.res, 'end');
    const second = await openEvents(port, `/bayeux/${client.clientId}`, t);
    await withTimeout('the first stream to end', firstEnded, 3000);
    await client.connect({ connectionType: 'eventsource' });
    await client.subscribe('/es');
    await herald.publish('/es', 1);
    await waitFor('the event on the second stream', () => second.events().flat().length === 1);
    assert.equal(second.res.complete, false, 'the second stream stays open');
  });

  test('a session with acknowledged delivery cannot open a stream: refused at once, not left open', async (t) => {
    const { port } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.handshake({ ext: { ack: true } });
    const res = await withTimeout('the answer', httpRequest(port, { path: `/bayeux/${client.clientId}`, headers: { Accept: 'text/event-stream' } }), 3000);
    assert.equal(res.status, 400);
    assert.match(res.json().error, /connect replies only/);
  });

  test('ends the stream when the session ends', async (t) => {
    const { port } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.handshake();
    const stream = await openEvents(port, `/bayeux/${client.clientId}`, t);
    const ended = once(stream.res, 'end');
    await client.send([{ channel: '/meta/disconnect', clientId: client.clientId }]);
    await ended;
  });
});
