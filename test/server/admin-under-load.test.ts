/**
 * Operators' doors while the server is busy: queued messages, slow consumers, thousands of
 * sessions. None of /metrics, /health or the dashboard may fail, and no request handler may end
 * the process.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createServer } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHerald } from '../../src/server/create-herald.js';
import { silentLogger } from '../../src/server/logger.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, postJson } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';

const SESSIONS = 2000;

describe('operators endpoints under load', () => {
  test('/metrics, /health and the dashboard answer while sessions have queued messages', async (t) => {
    const { herald, port } = await startHerald(t, { maxQueue: 50, slowConsumer: 'drop-oldest', maxSessionsPerAddress: 0 });
    // A long-poll session between two connects: its messages wait in its queue.
    const idle = new RawBayeux(port);
    await idle.open();
    await idle.subscribe('/a');
    assert.equal((await postJson(port, '/pub/a', { n: 0 })).status, 200);

    for (const path of ['/metrics', '/health', '/dashboard/stats', '/dashboard']) {
      const res = await httpRequest(port, { path });
      assert.equal(res.status, 200, `${path} answers while a queue is not empty: ${res.text.slice(0, 200)}`);
    }
    const stats = JSON.parse((await httpRequest(port, { path: '/dashboard/stats' })).text);
    assert.equal(stats.queued, 1);
    assert.equal(stats.slowConsumers.length, 1);

    // Thousands of sessions, every one with a queue; a few slow consumers over their limit.
    const batch = Array.from({ length: SESSIONS }, (_, i) => ({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: String(i), ext: { herald: { ids: true } } }));
    const clientIds: string[] = [];
    for (let i = 0; i < SESSIONS; i += 100) {
      // One handshake per request (the protocol's rule), many requests at once.
      const replies = await Promise.all(batch.slice(i, i + 100).map((message) => postJson(port, '/bayeux', [message])));
      for (const reply of replies) clientIds.push(reply.json()[0].clientId);
    }
    await Promise.all(clientIds.map((clientId) => postJson(port, '/bayeux', [{ channel: '/meta/subscribe', clientId, subscription: '/load' }])));
    for (let n = 0; n < 60; n++) await herald.publish('/load', { n });
    assert.equal(herald.sessionCount, SESSIONS + 1);

    const metrics = await httpRequest(port, { path: '/metrics' });
    assert.equal(metrics.status, 200);
    const queued = metrics.text.split('\n').find((line) => line.startsWith('herald_queued_deliveries '));
    assert.equal(Number(queued?.split(' ')[1]), SESSIONS * 50 + 1, 'every queue is full at its limit');
    const loaded = JSON.parse((await httpRequest(port, { path: '/dashboard/stats' })).text);
    assert.equal(loaded.sessions, SESSIONS + 1);
    assert.equal(loaded.slowConsumers.length, 10);
    assert.ok(loaded.slowConsumerDrops >= SESSIONS * 10);
    assert.equal((await httpRequest(port, { path: '/health' })).status, 200);
  });

  test('a handler that throws is answered 500 and logged; the process goes on', async (t) => {
    const lines: string[] = [];
    const logger = { ...silentLogger, error: (message: string) => lines.push(message) };
    const server = createServer();
    const herald = createHerald({ logger });
    herald.attach(server);
    // A request whose headers cannot be read: whatever a handler trips over, the guard catches.
    server.prependListener('request', (req: IncomingMessage) => {
      if (req.url?.startsWith('/pub/') === true) Object.defineProperty(req, 'headers', { get: () => { throw new Error('boom'); } });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onCleanup(t, async () => {
      await herald.close();
      server.close();
    });
    const { port } = server.address() as AddressInfo;
    const res = await postJson(port, '/pub/x', { n: 1 });
    assert.equal(res.status, 500);
    assert.deepEqual(lines, ['request failed']);
    assert.equal((await httpRequest(port, { path: '/health' })).status, 200);
  });

  test('the admin doors: stats stay small and carry no clientId or key; metrics carry no channel; the cookie is strict and the page unframeable', async (t) => {
    const adminKey = 'admin-key-0123456789abcdef';
    const { port } = await startHerald(t, { adminKey, maxSessionsPerAddress: 0 });
    const admin = { Authorization: `Bearer ${adminKey}` };
    const session = new RawBayeux(port);
    await session.open();
    const long = (n: number) => `/${'l'.repeat(1000)}/${n}`;
    for (let n = 0; n < 12; n++) {
      await session.subscribe(long(n));
      assert.equal((await postJson(port, `/pub${long(n)}`, { n })).status, 200);
    }
    const stats = await httpRequest(port, { path: '/dashboard/stats', headers: admin });
    assert.equal(stats.status, 200);
    for (let n = 0; n < 10; n++) assert.equal(stats.text.split(long(n)).length - 1, 1, 'each busy channel named once, not once more per sample');
    assert.ok(stats.text.length < 15_000, `${stats.text.length} bytes`);
    for (const secret of [session.clientId, adminKey]) assert.ok(!stats.text.includes(secret!), 'no clientId, no key');
    assert.deepEqual(Object.keys(JSON.parse(stats.text).slowConsumers[0]).sort(), ['address', 'id', 'queued'], 'slow consumers by public id and address (documented)');
    const metrics = await httpRequest(port, { path: '/metrics', headers: admin });
    assert.ok(!metrics.text.includes('lll'), 'channels are never metric labels');

    assert.equal((await httpRequest(port, { path: '/dashboard/stats', headers: { Authorization: 'Bearer wrong-key-0123456789abcdef' } })).status, 403);
    assert.equal((await httpRequest(port, { path: '/dashboard/stats', headers: { Cookie: `herald_admin=${adminKey}x` } })).status, 403);
    assert.equal((await httpRequest(port, { path: `/dashboard?key=${adminKey}x` })).headers['set-cookie'], undefined, 'a wrong key sets no cookie');
    const opened = await httpRequest(port, { path: `/dashboard?key=${adminKey}` });
    assert.equal(opened.status, 303);
    assert.match(String(opened.headers['set-cookie']), /^herald_admin=[^;]+; Path=\/dashboard; HttpOnly; SameSite=Strict$/);
    const page = await httpRequest(port, { path: '/dashboard', headers: { Cookie: `herald_admin=${adminKey}` } });
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/, 'no page of another site can frame it');
  });
});
