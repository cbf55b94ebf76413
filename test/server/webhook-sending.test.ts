/**
 * How webhook requests go out (webhook-sender.ts, webhook-request.ts): events fired together
 * arrive in one request (the batch wait), never more than MAX_BATCH_EVENTS in one, in the outbox's
 * order, on either engine; a 3xx is a failure, retried, never followed; credentials in the URL are
 * sent as Basic auth and never logged; an https receiver whose certificate is not trusted is
 * refused; `--webhook-batch-wait` is parsed and bounded.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { describe, test } from 'node:test';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import { RedisEngine } from '../../src/engines/redis/redis-engine.js';
import { resolveServeConfig } from '../../src/server/config.js';
import { createHerald, HERALD_DEFAULTS } from '../../src/server/create-herald.js';
import type { HeraldOptions } from '../../src/server/create-herald.js';
import type { Logger } from '../../src/server/logger.js';
import { MAX_BATCH_EVENTS } from '../../src/server/webhooks.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHookBackend, verifiedWebhook } from '../helpers/hook-backend.js';
import type { HookCall } from '../helpers/hook-backend.js';
import { startHerald } from '../helpers/herald.js';
import { CERT, KEY } from '../helpers/recipes.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const WEBHOOK_SECRET = 'webhook-secret-0123456789';
const OPTIONS: HeraldOptions = {
  permissions: { channels: [{ pattern: '/chat/**', subscribe: 'anyone', publish: 'anyone' }] },
  webhookSecret: WEBHOOK_SECRET,
  webhookEvents: ['publish'],
  webhookRetryMs: 20,
};

type Sent = { id: string; type: string; channel: string; messageId: string };
const eventsOf = (calls: readonly HookCall[]): Sent[] => calls.flatMap((call) => call.body.events as Sent[]);

function recordingLogger(lines: string[]): Logger {
  const keep = (message: string, fields?: Record<string, unknown>) => lines.push(`${message} ${JSON.stringify(fields ?? {})}`);
  return { debug: () => {}, info: keep, warn: keep, error: keep };
}

describe('webhook batches', () => {
  for (const engineKind of ['memory', 'redis'] as const) {
    test(`${engineKind}: events fired together arrive in one request, at most ${MAX_BATCH_EVENTS} a request, in the outbox's order`, async (t) => {
      let engine: MemoryEngine | RedisEngine = new MemoryEngine();
      if (engineKind === 'redis') {
        engine = new RedisEngine({ url: (await startRedis(t)).url });
        await engine.ready();
      }
      const backend = await startHookBackend(t, () => ({ json: {} }));
      // Long enough that a loaded machine fires a burst within it: the test waits this once per burst.
      const { herald } = await startHerald(t, { ...OPTIONS, engine, webhooks: [backend.url], webhookBatchWaitMs: 400 });

      // One after the other, as a backend's loop would: without the wait, the first goes alone.
      for (let i = 0; i < 20; i++) await herald.publish('/chat/small', { i });
      await waitFor('the small burst sent', () => eventsOf(backend.calls).length === 20);
      // All at once: more than a request takes.
      await Promise.all(Array.from({ length: MAX_BATCH_EVENTS + 30 }, (_, i) => herald.publish('/chat/big', { i })));
      await waitFor('the big burst sent', () => eventsOf(backend.calls).length === 20 + MAX_BATCH_EVENTS + 30);

      assert.deepEqual(
        backend.calls.map((call) => call.body.events.length),
        [20, MAX_BATCH_EVENTS, 30],
        'a request for the small burst; the big one in a full batch and the rest',
      );
      // The order they were stored in, read with a cursor of the test's own.
      const stored = (await engine.outbox('webhooks', 10_000).read('test', 1000)).entries.map((entry) => JSON.parse(entry.event).id);
      assert.deepEqual(
        eventsOf(backend.calls).map((event) => event.id),
        stored,
      );
      assert.ok(backend.calls.every((call) => verifiedWebhook(call, WEBHOOK_SECRET)));
    });
  }
});

describe('webhook requests', () => {
  test('a 3xx is a failure, retried and never followed; credentials in the URL go as Basic auth, never to the log', async (t) => {
    const elsewhere = await startHookBackend(t, () => ({ json: {} }));
    let redirects = 2;
    const backend = await startHookBackend(t, () => (redirects-- > 0 ? { status: 302, headers: { Location: `${elsewhere.url}/moved` } } : { json: {} }));
    const lines: string[] = [];
    const url = backend.url.replace('http://', 'http://hooker:s3cretpw@');
    const { herald } = await startHerald(t, { ...OPTIONS, webhooks: [`${url}/hook`], logger: recordingLogger(lines) });
    await herald.publish('/chat/moved', { text: 'hi' });
    await waitFor('answered 2xx on the third attempt', () => backend.calls.length === 3);

    assert.equal(new Set(eventsOf(backend.calls).map((event) => event.id)).size, 1, 'one event, sent three times');
    assert.equal(elsewhere.calls.length, 0, 'the redirect was not followed');
    assert.equal(backend.calls[0]!.path, '/hook');
    assert.equal(backend.calls[0]!.headers.authorization, `Basic ${Buffer.from('hooker:s3cretpw').toString('base64')}`);
    const retries = lines.filter((line) => line.startsWith('webhook failed, will retry'));
    assert.equal(retries.length, 2, lines.join('\n'));
    assert.ok(retries.every((line) => line.includes('answered 302') && line.includes('hooker:***@')), retries.join('\n'));
    assert.ok(!lines.join('\n').includes('s3cretpw'), 'the password is never logged');
  });

  test('a kept-alive connection the receiver dropped is replaced at once: not a failed attempt', async (t) => {
    // Raw HTTP: the first request on each connection is answered (kept alive), a second on the
    // same connection makes the receiver drop it unanswered, as a receiver closing idle
    // connections does when a request crosses its close.
    const answered: string[] = [];
    const connections: Socket[] = [];
    const server = createNetServer((socket) => {
      connections.push(socket);
      let requests = 0;
      let buffered = '';
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        const end = buffered.indexOf('\r\n\r\n');
        const length = Number(/content-length: (\d+)/i.exec(buffered)?.[1] ?? 0);
        if (end < 0 || buffered.length < end + 4 + length) return;
        const body = buffered.slice(end + 4, end + 4 + length);
        buffered = buffered.slice(end + 4 + length);
        if (++requests > 1) return void socket.destroy();
        answered.push(...(JSON.parse(body).events as Sent[]).map((event) => event.messageId));
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n{}');
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onCleanup(t, () => {
      for (const socket of connections) socket.destroy();
      server.close();
    });
    const lines: string[] = [];
    const { herald } = await startHerald(t, { ...OPTIONS, webhooks: [`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`], logger: recordingLogger(lines) });
    const first = await herald.publish('/chat/kept', { n: 1 });
    await waitFor('the first sent', () => answered.length === 1);
    const second = await herald.publish('/chat/kept', { n: 2 });
    await waitFor('the second sent', () => answered.length === 2);
    assert.deepEqual(answered, [first.id, second.id]);
    assert.equal(connections.length, 2, 'the second went on a new connection');
    assert.deepEqual(lines.filter((line) => line.startsWith('webhook failed')), [], 'no attempt failed');
  });

  test('an https receiver whose certificate is self-signed is refused: TLS is verified', async (t) => {
    const reached: string[] = [];
    const tlsErrors: Error[] = [];
    const server = createServer({ cert: readFileSync(CERT), key: readFileSync(KEY) }, (req, res) => {
      reached.push(req.url ?? '/');
      res.end('{}');
    });
    server.on('tlsClientError', (error: Error) => tlsErrors.push(error));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onCleanup(t, () => {
      server.closeAllConnections();
      server.close();
    });
    const lines: string[] = [];
    const { herald } = await startHerald(t, { ...OPTIONS, webhooks: [`https://127.0.0.1:${(server.address() as AddressInfo).port}/hook`], webhookAttempts: 2, logger: recordingLogger(lines) });
    await herald.publish('/chat/tls', { text: 'hi' });

    await waitFor('dropped after two refused attempts', () => lines.some((line) => line.startsWith('webhook events dropped')));
    assert.match(lines.find((line) => line.startsWith('webhook events dropped'))!, /2 attempts failed, the last self-signed certificate/);
    assert.deepEqual(reached, [], 'no request got through');
    await waitFor('the handshake broken off by Herald', () => tlsErrors.length >= 1);
  });
});

describe('--webhook-batch-wait', () => {
  test('parsed from the flag and the environment, 0 allowed, refused past 10 s', () => {
    assert.equal(HERALD_DEFAULTS.webhookBatchWaitMs, 50, 'the default');
    assert.equal(resolveServeConfig(['--webhook-batch-wait', '200ms'], {}).herald.webhookBatchWaitMs, 200);
    assert.equal(resolveServeConfig([], { HERALD_WEBHOOK_BATCH_WAIT: '0' }).herald.webhookBatchWaitMs, 0);
    assert.equal(resolveServeConfig([], { HERALD_WEBHOOK_BATCH_WAIT: '10s' }).herald.webhookBatchWaitMs, 10_000);
    assert.throws(() => resolveServeConfig(['--webhook-batch-wait', '11s'], {}), {
      code: 'HERALD_ERR_INVALID_OPTION',
      message: /^--webhook-batch-wait \(HERALD_WEBHOOK_BATCH_WAIT\): expected a duration .* from 0s to 10s, got "11s"$/,
    });
    assert.throws(() => resolveServeConfig([], { HERALD_WEBHOOK_BATCH_WAIT: '-5ms' }), { message: /^--webhook-batch-wait \(HERALD_WEBHOOK_BATCH_WAIT\): expected a duration/ });
    assert.throws(() => createHerald({ webhookBatchWaitMs: 10_001 }), { code: 'HERALD_ERR_INVALID_OPTION', message: /^webhookBatchWaitMs must be a number of milliseconds from 0 to 10000/ });
  });
});
