/** Herald nodes in one process joined through a real Redis: fan-out, history, presence, outages. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import { RedisEngine } from '../../src/engines/redis/redis-engine.js';
import type { Message } from '../../src/core/message.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, postJson } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { killPubSub, startRedis } from '../helpers/redis.js';
import type { TestRedis } from '../helpers/redis.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

type Hookable = { after(fn: () => unknown): void };

async function engineOn(t: Hookable, redis: TestRedis, options: { historySize?: number; presenceTtlMs?: number } = {}): Promise<RedisEngine> {
  const engine = new RedisEngine({ url: redis.url, historySize: options.historySize ?? 100, presenceTtlMs: options.presenceTtlMs });
  onCleanup(t, () => engine.close());
  await engine.ready();
  return engine;
}

function client(t: Hookable, url: string): Herald {
  const herald = new Herald(`${url}/bayeux`, { shareConnection: false, WebSocket, backoff: { initialMs: 20, maxMs: 200 } });
  onCleanup(t, () => herald.close());
  return herald;
}

test('two engines on one Redis: one id sequence per channel, each node gets every message once, in order', async (t) => {
  const redis = await startRedis(t);
  const [a, b] = [await engineOn(t, redis), await engineOn(t, redis)];
  const seen: Message[] = [];
  b.onMessage((m) => seen.push(m));
  await b.subscribe('/room');
  await b.subscribe('/**'); // two subscriptions matching one channel: still once
  const published = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).publish({ channel: '/room', data: i })));
  await waitFor('b has all 50', () => seen.length >= 50);
  const ids = published.map((m) => m.id).sort();
  assert.equal(new Set(ids).size, 50, 'ids are unique across nodes');
  assert.deepEqual(seen.map((m) => m.id), ids, 'b sees them once each, in id order');
  assert.deepEqual((await a.history('/room', { limit: 1000 })).messages.map((m) => m.id), ids, 'history is shared');
});

test('a node that loses its pub/sub connection catches up from the streams: nothing lost, nothing twice', async (t) => {
  const redis = await startRedis(t);
  const [a, b] = [await engineOn(t, redis), await engineOn(t, redis)];
  const seen: unknown[] = [];
  b.onMessage((m) => seen.push(m.data));
  await b.subscribe('/feed');
  await a.publish({ channel: '/feed', data: 0 });
  await waitFor('b has the first', () => seen.length === 1);
  assert.ok((await killPubSub(redis)) >= 1, 'killed the subscribers');
  // Published while b's subscription is down: pub/sub alone would drop these.
  for (let i = 1; i <= 30; i++) await a.publish({ channel: '/feed', data: i });
  await waitFor('b caught up', () => seen.length >= 31);
  await a.publish({ channel: '/feed', data: 31 });
  await waitFor('b has the next', () => seen.length >= 32);
  assert.deepEqual(seen, Array.from({ length: 32 }, (_, i) => i));
});

test('presence spans nodes, and a node killed without goodbye drops out after its TTL', async (t) => {
  const redis = await startRedis(t);
  const a = await engineOn(t, redis, { presenceTtlMs: 300 });
  await a.join('/lobby', { session: 'alice', user: 'alice' });
  // Another node, in a process of its own, so that it can die for real.
  const engineModule = new URL('../../src/engines/redis/redis-engine.js', import.meta.url).href;
  const other = spawn(process.execPath, ['--input-type=module', '-e', `
    const { RedisEngine } = await import(${JSON.stringify(engineModule)});
    const engine = new RedisEngine({ url: ${JSON.stringify(redis.url)}, presenceTtlMs: 300, nodeId: 'doomed' });
    await engine.ready();
    await engine.join('/lobby', { session: 'bob', user: 'bob' });
    console.log('joined');
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  onCleanup(t, () => other.kill('SIGKILL'));
  await withTimeout('the other node joins', once(other.stdout!, 'data'));
  const both = await a.presence('/lobby');
  assert.deepEqual(both.map((m) => `${m.user}@${m.node === 'doomed' ? 'other' : 'a'}`).sort(), ['alice@a', 'bob@other']);
  other.kill('SIGKILL');
  const members = await waitFor('bob is gone', async () => {
    const now = await a.presence('/lobby');
    return now.length === 1 ? now : undefined;
  });
  assert.deepEqual(members.map((m) => m.user), ['alice']);
});

test('Herald nodes on Redis: a publish on one reaches a client of the other; presence and history across nodes', async (t) => {
  const redis = await startRedis(t);
  const a = await startHerald(t, { engine: redis.url, historySize: 10 });
  const b = await startHerald(t, { engine: redis.url, historySize: 10 });
  await waitFor('both nodes healthy', async () => (await httpRequest(a.port, { path: '/health' })).status === 200 && (await httpRequest(b.port, { path: '/health' })).status === 200);
  const onB = client(t, b.url);
  const received: unknown[] = [];
  await onB.subscribe('/news', (data) => received.push(data)).ready;
  const published = await postJson(a.port, '/pub/news', { headline: 'from a' });
  assert.equal(published.status, 200, published.text);
  await waitFor('the client on b has it', () => received.length === 1);
  assert.deepEqual(received, [{ headline: 'from a' }]);
  const presence = (await httpRequest(a.port, { path: '/presence/news' })).json();
  assert.equal(presence.users, 1, 'a sees the subscriber held by b');
  assert.equal(typeof presence.members[0].user, 'string');
  const history = (await httpRequest(b.port, { path: '/history/news' })).json();
  assert.deepEqual(history.messages.map((m: { id: string }) => m.id), [published.json().id]);
});

test('Redis down: nodes say so on /ready (and stay alive on /health), publishes get 503 (REST and Bayeux), local clients stay; back up: all recovers', async (t) => {
  const redis = await startRedis(t);
  const a = await startHerald(t, { engine: redis.url, historySize: 10 });
  const b = await startHerald(t, { engine: redis.url, historySize: 10 });
  const healthy = async (port: number) => (await httpRequest(port, { path: '/ready' })).status === 200;
  await waitFor('both nodes healthy', async () => (await healthy(a.port)) && (await healthy(b.port)));
  const onB = client(t, b.url);
  const received: unknown[] = [];
  await onB.subscribe('/ops', (data) => received.push(data)).ready;
  const raw = new RawBayeux(a.port);
  await raw.open();

  await redis.stop();
  const health: { status: string; engine: { detail: string } } = await waitFor('a reports the outage', async () => {
    const res = await httpRequest(a.port, { path: '/ready' });
    return res.status === 503 ? res.json() : undefined;
  });
  assert.equal(health.status, 'engine_unavailable');
  assert.match(health.engine.detail, /redis/);
  const alive = await httpRequest(a.port, { path: '/health' });
  assert.equal(alive.status, 200, 'liveness: restarting the node would not bring Redis back');
  assert.equal(alive.json().status, 'degraded');
  const rest = await postJson(a.port, '/pub/ops', { lost: 'never' });
  assert.equal(rest.status, 503);
  assert.equal(rest.headers['retry-after'], '1');
  assert.match(rest.json().error, /engine unavailable/);
  const [bayeux] = await raw.publish('/ops', { lost: 'never' });
  assert.equal(bayeux.successful, false);
  assert.equal(bayeux.error, '503::engine_unavailable');
  assert.equal(bayeux.advice.reconnect, 'retry');
  assert.equal((await httpRequest(b.port, { path: '/history/ops' })).status, 503);
  assert.equal(onB.state, 'connected', 'b keeps serving its client');

  await redis.start();
  await waitFor('both nodes healthy again', async () => (await healthy(a.port)) && (await healthy(b.port)), 15_000);
  assert.equal((await postJson(a.port, '/pub/ops', { after: 'restart' })).status, 200);
  await waitFor('the client on b has the publish made after the restart', () => received.length === 1);
  assert.deepEqual(received, [{ after: 'restart' }], 'nothing from the outage was half-delivered');
  const [again] = await raw.publish('/ops', { bayeux: 'works' });
  assert.equal(again.successful, true);
  await waitFor('and the Bayeux one', () => received.length === 2);
});
