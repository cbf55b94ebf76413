/**
 * Idempotency keys under faults, on three `herald serve` processes joined through a real Redis:
 * the same key sent to every node at once publishes once; reused on another channel it is a 409;
 * a first publish that timed out while Redis was paused (a 504: it may have been done), retried on another node, takes
 * effect once; a Redis restarted with its data still knows the key, one restarted empty does not
 * (README "Batch publish and idempotency keys" says so).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { startNode } from '../helpers/cluster.js';
import type { ClusterNode } from '../helpers/cluster.js';
import { httpRequest, openStream } from '../helpers/http.js';
import { startRedis } from '../helpers/redis.js';
import type { TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const KEY = 'idempotency-faults-cluster-key';
const ARGS = ['--jwt-secret', SECRET, '--publish-key', KEY];
type Hookable = { after(fn: () => unknown): void };

async function cluster(t: Hookable): Promise<{ redis: TestRedis; nodes: [ClusterNode, ClusterNode, ClusterNode] }> {
  const redis = await startRedis(t);
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await startNode(t, redis.url, ARGS));
  return { redis, nodes: nodes as [ClusterNode, ClusterNode, ClusterNode] };
}

/** `POST /pub{channel}` with an `Idempotency-Key`. */
function publish(port: number, channel: string, data: unknown, key: string) {
  return httpRequest(port, {
    method: 'POST',
    path: `/pub${channel}`,
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', 'Idempotency-Key': key },
    body: JSON.stringify(data),
  });
}

/** An SSE subscriber: the data of the messages it received so far. */
async function subscriber(port: number, channel: string, t: Hookable): Promise<() => unknown[]> {
  const jwt = await new SignJWT({ subscribe: ['/**'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('watcher').setExpirationTime('1h').sign(Buffer.from(SECRET));
  const stream = await openStream(port, `/sub${channel}?token=${jwt}`, { Accept: 'text/event-stream' }, t);
  return () => stream.text().split('\n').filter((line) => line.startsWith('data: {"id"')).map((line) => JSON.parse(line.slice(6)).data);
}

/** Waits until every node answers /ready again (Redis back). */
const allReady = (nodes: readonly ClusterNode[]) =>
  waitFor('every node ready again', async () => (await Promise.all(nodes.map((node) => httpRequest(node.port, { path: '/ready' }).then((res) => res.status)))).every((status) => status === 200), 15_000);

describe('idempotency keys on three Redis nodes, under faults', () => {
  test('the same key sent to A, B and C at once publishes once: every answer carries that id; another channel gets a 409', async (t) => {
    const { nodes } = await cluster(t);
    const received = await subscriber(nodes[2].port, '/orders', t);
    const answers = await Promise.all(nodes.map((node, i) => publish(node.port, '/orders', { from: i }, 'order-1')));
    for (const answer of answers) assert.equal(answer.status, 200, answer.text);
    const bodies = answers.map((answer) => answer.json());
    assert.equal(new Set(bodies.map((body) => body.id)).size, 1, JSON.stringify(bodies));
    assert.equal(bodies.filter((body) => body.duplicate !== true).length, 1, JSON.stringify(bodies));
    await waitFor('the one message on C', () => received().length >= 1);
    const conflict = await publish(nodes[1].port, '/refunds', 1, 'order-1');
    assert.equal(conflict.status, 409, conflict.text);
    assert.match(conflict.json().error, /\/orders/);
    // One message only: a later publish without the key comes right after it.
    await publish(nodes[0].port, '/orders', 'last', 'order-2');
    await waitFor('the later one on C', () => received().includes('last'));
    assert.equal(received().length, 2, JSON.stringify(received()));
  });

  test('a first publish that timed out while Redis was paused (504), retried on B once Redis answers, takes effect once', async (t) => {
    const { redis, nodes } = await cluster(t);
    const [a, b, c] = nodes;
    const received = await subscriber(c.port, '/pay', t);
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    // Longer than the engine's command timeout (2 s): A's publish gives up, but Redis runs it once it resumes.
    await admin.call('CLIENT', 'PAUSE', '2600', 'ALL');
    const first = await publish(a.port, '/pay', 'charge', 'charge-9');
    assert.equal(first.status, 504, first.text);
    await allReady(nodes);
    const retry = await publish(b.port, '/pay', 'charge', 'charge-9');
    assert.equal(retry.status, 200, retry.text);
    await waitFor('the charge on C', () => received().length >= 1);
    await publish(a.port, '/pay', 'after', 'charge-10');
    await waitFor('the next one on C', () => received().includes('after'));
    assert.deepEqual(received(), ['charge', 'after'], 'the charge once');
    assert.equal(retry.json().duplicate, true, 'the retry found the paused first publish done');
  });

  test('a retry after Redis restarted with its data answers the first id; after Redis restarted empty it publishes again', async (t) => {
    const { redis, nodes } = await cluster(t);
    const [a, b] = nodes;
    const first = (await publish(a.port, '/ship', 1, 'ship-1')).json();
    await redis.restartWithData();
    await allReady(nodes);
    const retry = await publish(b.port, '/ship', 1, 'ship-1');
    assert.equal(retry.status, 200, retry.text);
    assert.deepEqual([retry.json().id, retry.json().duplicate], [first.id, true]);

    await redis.stop();
    await redis.start();
    await allReady(nodes);
    const afterLoss = await publish(b.port, '/ship', 1, 'ship-1');
    assert.equal(afterLoss.status, 200, afterLoss.text);
    assert.notEqual(afterLoss.json().id, first.id, 'the key went with the data (documented)');
    assert.equal(afterLoss.json().duplicate, undefined);
  });
});
