/**
 * The Redis engine against what Redis itself can do to it: refuse writes (maxmemory), leave a
 * publish unanswered past the command timeout, refuse the node's first round trips after it
 * connects, and share its server with other key spaces whose names a glob could reach.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisEngine } from '../../src/engines/redis/redis-engine.js';
import type { Message } from '../../src/core/message.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { httpRequest, openStream, postJson } from '../helpers/http.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const redis = await startRedis({ after: (fn) => after(fn) });
const admin = new Redis(redis.url);
after(() => admin.disconnect());

/** Every write Redis is asked for is refused as over `maxmemory` until `release` (noeviction, the default). */
async function outOfMemory(t: { after(fn: () => unknown): void }): Promise<() => Promise<void>> {
  await admin.call('CONFIG', 'SET', 'maxmemory', '1');
  const release = async () => void (await admin.call('CONFIG', 'SET', 'maxmemory', '0'));
  t.after(release);
  return release;
}

test('glob characters in the key prefix do not widen a pattern subscription to other key spaces', async (t) => {
  const prefix = 'g[ab]?*\\:';
  const engine = new RedisEngine({ url: redis.url, keyPrefix: prefix });
  t.after(() => engine.close());
  await engine.ready();
  await engine.subscribe('/a/*');
  await engine.subscribe('/b/**');
  // PUBLISH answers how many subscriptions (patterns included) received it.
  assert.equal(await admin.publish(`${prefix}c:/a/x`, 'x'), 1, 'its own channels reach it');
  assert.equal(await admin.publish(`${prefix}c:/b/x/y`, 'x'), 1);
  for (const other of ['ga1:c:/a/x', 'gbzzz\\:c:/a/x', 'gb?*\\:c:/b/x', 'g[ab]?*\\:c:/c/x']) {
    assert.equal(await admin.publish(other, 'x'), 0, `${other} is another key space's (or another pattern's)`);
  }
});

test('a publish Redis refuses for want of memory is a 503, never acknowledged, and nothing of it is delivered later', async (t) => {
  const { port } = await startHerald(t, { engine: redis.url, maxSessionsPerAddress: 0 });
  await waitFor('the node ready', async () => (await httpRequest(port, { path: '/ready' })).status === 200);
  const stream = await openStream(port, '/sub/oom?transport=stream', {}, t);
  const release = await outOfMemory(t);
  const refused = await postJson(port, '/pub/oom', { n: 1 });
  assert.equal(refused.status, 503, refused.text);
  assert.match(refused.json().error, /OOM|memory/i);
  await release();
  const accepted = await postJson(port, '/pub/oom', { n: 2 });
  assert.equal(accepted.status, 200, accepted.text);
  const line = await waitFor('the accepted message', () => stream.text().includes('"n":2'));
  assert.ok(line && !stream.text().includes('"n":1'), `the refused one never arrives: ${stream.text()}`);
  assert.equal(await admin.xlen('herald:h:/oom'), 1, 'only the accepted message is in history');
});

test('a publish whose answer Redis does not give in time (paused) is a 504, not a refusal: it may be, and here is, stored', async (t) => {
  const engine = new RedisEngine({ url: redis.url, commandTimeoutMs: 200 });
  const { port } = await startHerald(t, { engine, maxSessionsPerAddress: 0 });
  await waitFor('the node ready', async () => (await httpRequest(port, { path: '/ready' })).status === 200);
  const bayeux = new RawBayeux(port);
  await bayeux.open();
  // WRITE: scripts wait, reads and the pause's own client do not. The publishes reach Redis and wait.
  await admin.call('CLIENT', 'PAUSE', 1500, 'WRITE');
  t.after(() => admin.call('CLIENT', 'UNPAUSE'));
  const rest = await postJson(port, '/pub/slow', { n: 1 });
  assert.equal(rest.status, 504, rest.text);
  assert.match(rest.json().error, /may have been done/);
  const [reply] = await bayeux.publish('/slow', { n: 2 });
  assert.equal(reply.successful, false);
  assert.equal(reply.error, '504::engine_no_answer', 'not 503::engine_unavailable: that says it did not happen');
  await admin.call('CLIENT', 'UNPAUSE');
  await waitFor('both are stored once Redis goes on', async () => (await admin.xlen('herald:h:/slow')) === 2);
});

test('a node whose first round trips after connecting are refused refuses publishes, and recovers when Redis lets it', async (t) => {
  // A user that may write ids and history but not presence: the node's start fails half-way,
  // after the floor is read and before its subscriptions are live.
  await admin.call('ACL', 'SETUSER', 'partial', 'on', '>partial-pw', 'resetkeys', '~late:floor', '~late:epoch', '~late:h:*', 'resetchannels', '&*', '+@all');
  t.after(() => admin.call('ACL', 'DELUSER', 'partial'));
  const errors: string[] = [];
  const engine = new RedisEngine({ url: `redis://partial:partial-pw@127.0.0.1:${redis.port}`, keyPrefix: 'late:', onError: (error, context) => errors.push(`${context}: ${(error as Error).message}`) });
  t.after(() => engine.close());
  const got: Message[] = [];
  engine.onMessage((message) => got.push(message));
  await engine.subscribe('/late');
  await waitFor('the refused start', () => errors.find((line) => line.includes('redis reconnect')));
  assert.equal(engine.health().healthy, false);
  await assert.rejects(engine.publish({ channel: '/late', data: 1 }), { code: 'HERALD_ERR_ENGINE_UNAVAILABLE' }, 'a publish now would miss the subscription');
  await admin.call('ACL', 'SETUSER', 'partial', 'allkeys');
  await waitFor('healthy again, without a reconnect', () => engine.health().healthy, 5_000);
  const published = await engine.publish({ channel: '/late', data: 2 });
  await waitFor('the message', () => got.find((message) => message.id === published.id));
  assert.deepEqual(got.map((message) => message.data), [2]);
});

test('a node that starts while Redis refuses every write (out of memory) serves once Redis has room', async (t) => {
  const release = await outOfMemory(t);
  const errors: string[] = [];
  const engine = new RedisEngine({ url: redis.url, keyPrefix: 'oom:', onError: (error, context) => errors.push(`${context}: ${(error as Error).message}`) });
  t.after(() => engine.close());
  await waitFor('the refused start', () => errors.find((line) => line.includes('OOM')));
  await assert.rejects(engine.publish({ channel: '/o', data: 1 }), { code: 'HERALD_ERR_ENGINE_UNAVAILABLE' });
  await release();
  await waitFor('healthy again, without a reconnect', () => engine.health().healthy, 5_000);
  await engine.publish({ channel: '/o', data: 2 });
});

test('after pub/sub is cut, a pattern hears of its gap only once it is subscribed again: what is published right after the gap is delivered', async (t) => {
  const node = new RedisEngine({ url: redis.url, keyPrefix: 'window:' });
  const publisher = new RedisEngine({ url: redis.url, keyPrefix: 'window:' });
  t.after(() => Promise.all([node.close(), publisher.close()]));
  await Promise.all([node.ready(), publisher.ready()]);
  const heard: string[] = [];
  node.onMessage((message) => heard.push(String(message.data)));
  // Whoever is told of a gap goes on from there (a pattern poller's next answer): what is
  // published the moment it is told must reach it, or be covered by a later gap.
  let told = false;
  node.onGap((channel) => {
    heard.push(`gap ${channel}`);
    if (told) return;
    told = true;
    // On a channel that never delivered here: nothing catches it up (a channel that did is read back from history).
    void publisher.publish({ channel: '/w/fresh', data: 'right after the gap' });
  });
  await node.subscribe('/w/*');
  // A channel of its own too: the node subscribes to it (a round trip) before the pattern.
  await node.subscribe('/elsewhere');
  await publisher.publish({ channel: '/w/a', data: 'before' });
  await waitFor('the first message', () => heard.includes('before'));
  await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
  await waitFor('the gap of the pattern', () => told);
  await waitFor('the node subscribed again', async () => Number(await admin.call('PUBSUB', 'NUMPAT')) > 0);
  await publisher.publish({ channel: '/w/a', data: 'later' });
  await waitFor('a later message', () => heard.includes('later'));
  assert.deepEqual(heard, ['before', 'gap /w/*', 'right after the gap', 'later']);
});
