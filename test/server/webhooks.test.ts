/**
 * Webhooks, received by a real HTTP backend on 127.0.0.1: `channel.occupied` and
 * `channel.vacated` of a channel with join/leave events arrive signed, once per id, in order; a
 * receiver answering 500 gets the same events again until it takes them; a receiver that hangs
 * holds up neither publishing nor delivery, and its pending events are bounded (oldest dropped,
 * logged); with three nodes on one Redis, each event is stored and sent once; a Redis restarted
 * empty loses the sending for no later event. A sending node killed: test/cluster/webhooks-cluster.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import type { Outbox } from '../../src/core/outbox.js';
import { RedisEngine } from '../../src/engines/redis/redis-engine.js';
import type { HeraldOptions } from '../../src/server/create-herald.js';
import type { Logger } from '../../src/server/logger.js';
import { startHookBackend, verifiedWebhook } from '../helpers/hook-backend.js';
import type { HookCall } from '../helpers/hook-backend.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream, postJson } from '../helpers/http.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const WEBHOOK_SECRET = 'webhook-secret-0123456789';
const GRACE_MS = 300;
const OPTIONS: HeraldOptions = {
  permissions: { channels: [{ pattern: '/chat/**', subscribe: 'anyone', publish: 'anyone', presence: 'events' }] },
  presenceGraceMs: GRACE_MS,
  presenceSweepMs: 100,
  webhookSecret: WEBHOOK_SECRET,
  webhookRetryMs: 20,
};

const verified = (call: HookCall): boolean => verifiedWebhook(call, WEBHOOK_SECRET);

type Sent = { id: string; type: string; channel: string; at: number };
const eventsOf = (calls: readonly HookCall[]): Sent[] => calls.flatMap((call) => call.body.events as Sent[]);
const kinds = (calls: readonly HookCall[]) => eventsOf(calls).map((event) => `${event.type} ${event.channel}`);

/** A subscriber by SSE: a member of the channel while the stream is open. */
async function member(t: { after(fn: () => unknown): void }, port: number, channel: string) {
  return openStream(port, `/sub${channel}`, { Accept: 'text/event-stream' }, t);
}

function recordingLogger(lines: string[]): Logger {
  const keep = (message: string, fields?: Record<string, unknown>) => lines.push(`${message} ${JSON.stringify(fields ?? {})}`);
  return { debug: () => {}, info: keep, warn: keep, error: keep };
}

describe('webhooks on one node', () => {
  test('occupied and vacated arrive signed, once per id, in order; a receiver with a filter gets only its events', async (t) => {
    const all = await startHookBackend(t, () => ({ json: {} }));
    const vacatedOnly = await startHookBackend(t, () => ({ json: {} }));
    const { port } = await startHerald(t, { ...OPTIONS, webhooks: [all.url, { url: vacatedOnly.url, events: ['channel.vacated'] }] });

    const first = await member(t, port, '/chat/a');
    await waitFor('occupied', () => kinds(all.calls).includes('channel.occupied /chat/a'));
    const second = await member(t, port, '/chat/a');
    first.req.destroy();
    second.req.destroy();
    await waitFor('vacated', () => kinds(all.calls).includes('channel.vacated /chat/a'));
    await waitFor('vacated, filtered', () => vacatedOnly.calls.length === 1);

    assert.deepEqual(kinds(all.calls), ['channel.occupied /chat/a', 'channel.vacated /chat/a'], 'a second member and a leave within the window say nothing');
    assert.deepEqual(kinds(vacatedOnly.calls), ['channel.vacated /chat/a']);
    for (const call of [...all.calls, ...vacatedOnly.calls]) {
      assert.ok(verified(call), `signature of ${call.raw}`);
      assert.equal(call.headers['content-type'], 'application/json');
    }
    const sent = eventsOf(all.calls);
    assert.equal(new Set(sent.map((event) => event.id)).size, 2, 'an id per event');
    assert.ok(sent[0]!.at <= sent[1]!.at && sent[0]!.at > Date.now() - 60_000);
    // A tampered body does not verify.
    assert.equal(verified({ ...all.calls[0]!, raw: all.calls[0]!.raw.replace('occupied', 'vacated') }), false);
  });

  test('a receiver answering 500 gets the same event again, with the same id, until it answers 2xx', async (t) => {
    let failures = 2;
    const backend = await startHookBackend(t, () => (failures-- > 0 ? { status: 500, json: {} } : { json: {} }));
    const { port } = await startHerald(t, { ...OPTIONS, webhooks: [backend.url], webhookEvents: ['channel.occupied'] });
    await member(t, port, '/chat/retry');
    await waitFor('three attempts', () => backend.calls.length === 3);
    const ids = eventsOf(backend.calls).map((event) => event.id);
    assert.deepEqual(kinds(backend.calls), Array(3).fill('channel.occupied /chat/retry'));
    assert.equal(new Set(ids).size, 1, 'one event, sent three times');
    assert.ok(backend.calls.every(verified));
  });

  test('past the last attempt the events are dropped and logged', async (t) => {
    const backend = await startHookBackend(t, () => ({ status: 503, json: {} }));
    const lines: string[] = [];
    const { port } = await startHerald(t, { ...OPTIONS, webhooks: [backend.url], webhookAttempts: 2, logger: recordingLogger(lines) });
    await member(t, port, '/chat/doomed');
    await waitFor('dropped after two attempts', () => lines.some((line) => line.startsWith('webhook events dropped') && line.includes('2 attempts failed, the last answered 503')));
    assert.equal(backend.calls.length, 2);
  });

  test('webhooks without a secret are refused, naming it; bad targets and events are named', async () => {
    const { createHerald } = await import('../../src/server/create-herald.js');
    assert.throws(() => createHerald({ webhooks: ['http://127.0.0.1:9/hook'] }), { code: 'HERALD_ERR_INVALID_OPTION', message: /webhookSecret \(--webhook-secret\)/ });
    assert.throws(() => createHerald({ webhooks: ['ftp://x/hook'], webhookSecret: WEBHOOK_SECRET }), { code: 'HERALD_ERR_INVALID_OPTION', message: /^webhooks must be a list of URLs or \{url, events\}/ });
    assert.throws(() => createHerald({ webhooks: [{ url: 'http://x/', events: ['channel.opened' as never] }], webhookSecret: WEBHOOK_SECRET }), { code: 'HERALD_ERR_INVALID_OPTION', message: /^webhooks must be/ });
    assert.throws(() => createHerald({ webhookEvents: ['user.away' as never] }), { code: 'HERALD_ERR_INVALID_OPTION', message: /^webhookEvents must be comma-separated events \(channel.occupied, channel.vacated, user.online, user.offline, subscribe, unsubscribe, publish\)/ });
  });
});

/** A Redis engine on a Redis of the test's own, ready. */
async function redisEngine(t: { after(fn: () => unknown): void }): Promise<RedisEngine> {
  const redis = await startRedis(t);
  const engine = new RedisEngine({ url: redis.url, presenceTtlMs: 400 });
  await engine.ready();
  return engine;
}

describe('webhooks on either engine', () => {
  for (const engineKind of ['memory', 'redis'] as const) {
    test(`${engineKind}: a receiver that hangs delays neither publishing nor delivery; its pending events are bounded, the oldest dropped`, async (t) => {
      const engine = engineKind === 'redis' ? await redisEngine(t) : new MemoryEngine();
      const backend = await startHookBackend(t, () => ({ hang: true }));
      const lines: string[] = [];
      const { port } = await startHerald(t, { ...OPTIONS, engine, webhooks: [backend.url], webhookMaxPending: 2, logger: recordingLogger(lines) });
      const listener = await member(t, port, '/chat/busy');
      await waitFor('the first request hangs', () => backend.inFlight() === 1);

      // While it hangs, a publish is answered and delivered.
      const published = await postJson(port, '/pub/chat/busy', { text: 'still here' });
      assert.equal(published.status, 200, published.text);
      await waitFor('delivered while the webhook hangs', () => listener.text().includes('still here'));
      assert.equal(backend.inFlight(), 1, 'the webhook request was still hanging');

      // Three more channels occupied while it hangs: two are kept, the oldest goes — found and
      // told when the receiver gets that far.
      for (const channel of ['/chat/b1', '/chat/b2', '/chat/b3']) await member(t, port, channel);
      // Read with a cursor of the test's own (the sender's stays where it is).
      const outbox = engine.outbox('webhooks', 2);
      await waitFor('the last stored', async () => (await outbox.read('test', 10)).entries.some((entry) => entry.event.includes('/chat/b3')));
      backend.answer(() => ({ json: {} }));
      backend.release({ json: {} });
      await waitFor('the rest sent', () => kinds(backend.calls).includes('channel.occupied /chat/b3'));
      assert.ok(lines.some((line) => line.startsWith('webhook events dropped') && line.includes('more than 2 pending')), lines.join('\n'));
      assert.deepEqual(kinds(backend.calls), ['channel.occupied /chat/busy', 'channel.occupied /chat/b2', 'channel.occupied /chat/b3'], 'the pending two, in one batch, after the hanging one');
      assert.equal(backend.calls.length, 2);
      const metrics = (await httpRequest(port, { path: '/metrics' })).text;
      assert.match(metrics, /herald_webhook_events_dropped_total\{reason="pending"\} 1\n/);
      await waitFor('both requests counted', async () => /herald_webhook_requests_total\{outcome="ok"\} 2\n/.test((await httpRequest(port, { path: '/metrics' })).text));
    });
  }
});

/** A node's engine that records each event it offered its outbox, and whether it was the one that stored it. */
class AddCountingEngine extends RedisEngine {
  readonly offered: { type: string; stored: boolean }[] = [];
  override outbox(name: string, maxLength: number): Outbox {
    const outbox = super.outbox(name, maxLength);
    const add = outbox.add.bind(outbox);
    outbox.add = async (event, claim) => {
      const stored = await add(event, claim);
      this.offered.push({ type: JSON.parse(event).type, stored });
      return stored;
    };
    return outbox;
  }
}

describe('webhooks on Redis', () => {
  test('three nodes: every node sees the channel vacated and offers it, one stores it, one node sends each event once', async (t) => {
    const redis = await startRedis(t);
    const backend = await startHookBackend(t, () => ({ json: {} }));
    const engines: AddCountingEngine[] = [];
    const nodes = [];
    for (let i = 0; i < 3; i++) {
      const engine = new AddCountingEngine({ url: redis.url, presenceTtlMs: 400 });
      // A first read of presence that fails makes the next one the baseline: its member would be taken as there already.
      await engine.ready();
      engines.push(engine);
      nodes.push(await startHerald(t, { ...OPTIONS, engine, webhooks: [backend.url] }));
    }
    const vacatedOffers = (engine: AddCountingEngine) => engine.offered.filter((offer) => offer.type === 'channel.vacated').length;
    for (let round = 1; round <= 2; round++) {
      const members = [];
      for (const node of nodes) members.push(await member(t, node.port, '/chat/cluster'));
      await waitFor('occupied', () => kinds(backend.calls).filter((kind) => kind === 'channel.occupied /chat/cluster').length === round);
      for (const stream of members) stream.req.destroy();
      // Each node had a member of its own: each follows the channel to its end, and offers the vacated.
      await waitFor('every node offered the vacated', () => engines.every((engine) => vacatedOffers(engine) === round));
      await waitFor('vacated', () => kinds(backend.calls).filter((kind) => kind === 'channel.vacated /chat/cluster').length === round);
    }
    await waitFor('no request in flight', () => backend.inFlight() === 0);
    const stored = engines.flatMap((engine) => engine.offered.filter((offer) => offer.stored));
    assert.equal(stored.length, 4, 'each event stored once');
    const sent = eventsOf(backend.calls);
    assert.deepEqual(kinds(backend.calls), ['channel.occupied /chat/cluster', 'channel.vacated /chat/cluster', 'channel.occupied /chat/cluster', 'channel.vacated /chat/cluster']);
    assert.equal(new Set(sent.map((event) => event.id)).size, 4, 'a healthy receiver sees no event twice');
    assert.ok(backend.calls.every(verified));
  });

  test('Redis restarted empty: the node takes the lease again and sends the events that come after; a hanging receiver holds up no publish', async (t) => {
    const redis = await startRedis(t);
    const backend = await startHookBackend(t, () => ({ json: {} }));
    const lines: string[] = [];
    const engine = new RedisEngine({ url: redis.url, presenceTtlMs: 400 });
    await engine.ready();
    const { port } = await startHerald(t, { ...OPTIONS, engine, webhooks: [backend.url], webhookEvents: ['channel.occupied'], logger: recordingLogger(lines) });
    await member(t, port, '/chat/before');
    await waitFor('occupied before the restart', () => kinds(backend.calls).includes('channel.occupied /chat/before'));

    await redis.stop();
    await redis.start();
    await waitFor('the node is ready again', async () => (await httpRequest(port, { path: '/ready' })).status === 200);
    backend.answer(() => ({ hang: true }));
    const listener = await member(t, port, '/chat/after');
    await waitFor('occupied after the restart, sent', () => kinds(backend.calls).includes('channel.occupied /chat/after'));
    assert.ok(lines.filter((line) => line.startsWith('webhooks: this node sends them')).length >= 1);

    // The receiver hangs on it: publishing and delivery go on.
    const published = await postJson(port, '/pub/chat/after', { text: 'not held up' });
    assert.equal(published.status, 200, published.text);
    await waitFor('delivered while the webhook hangs', () => listener.text().includes('not held up'));
    assert.ok(backend.inFlight() >= 1, 'the webhook request was still hanging');
    backend.release({ json: {} });
  });
});
