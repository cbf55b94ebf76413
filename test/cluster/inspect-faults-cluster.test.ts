/**
 * Inspection under faults, on three `herald serve` processes joined through a real Redis: pages of
 * `/admin/channels` walked one or two names at a time add up to the cluster's list when nodes hold
 * overlapping channels; a node cut off from Redis (a partition) is named as unanswered within the
 * wait, and answers again once it is back. (A node killed -9: batch-inspect-cluster.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { startNode } from '../helpers/cluster.js';
import type { ClusterNode } from '../helpers/cluster.js';
import { startCutProxy } from '../helpers/cut-proxy.js';
import { httpRequest, openStream } from '../helpers/http.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const KEY = 'inspect-faults-cluster-key';
const BACKEND = { Authorization: `Bearer ${KEY}` };
const ARGS = ['--jwt-secret', SECRET, '--publish-key', KEY];
type Hookable = { after(fn: () => unknown): void };

const get = (port: number, path: string) => httpRequest(port, { path, headers: BACKEND }).then((res) => res.json());

async function subscribe(port: number, channel: string, t: Hookable): Promise<void> {
  const jwt = await new SignJWT({ subscribe: ['/**'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('watcher').setExpirationTime('1h').sign(Buffer.from(SECRET));
  await openStream(port, `/sub${channel}?token=${jwt}`, { Accept: 'text/event-stream' }, t);
}

/** Every page of `/admin/channels?pattern=…&limit=…`, asked of `port`, concatenated. */
async function allPages(port: number, pattern: string, limit: number): Promise<{ channel: string; subscribers: number }[]> {
  const listed: { channel: string; subscribers: number }[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 20; page++) {
    const answer = await get(port, `/admin/channels?pattern=${pattern}&limit=${limit}${cursor === undefined ? '' : `&cursor=${cursor}`}`);
    assert.deepEqual(answer.unanswered, []);
    listed.push(...answer.channels);
    cursor = answer.cursor;
    if (cursor === undefined) return listed;
  }
  throw new Error('more than 20 pages');
}

describe('inspection on three Redis nodes, under faults', () => {
  test('pages walked across nodes holding overlapping channels add up to the cluster\'s list, each channel once with its whole count', async (t) => {
    const redis = await startRedis(t);
    const nodes: ClusterNode[] = [];
    for (let i = 0; i < 3; i++) nodes.push(await startNode(t, redis.url, ARGS));
    const held: Record<number, string[]> = { 0: ['/r/a', '/r/b', '/r/c'], 1: ['/r/b', '/r/d', '/r/b'], 2: ['/r/a', '/r/d', '/r/e', '/r/f'] };
    for (const [index, channels] of Object.entries(held)) for (const channel of channels) await subscribe(nodes[Number(index)]!.port, channel, t);
    const expected = [['/r/a', 2], ['/r/b', 3], ['/r/c', 1], ['/r/d', 2], ['/r/e', 1], ['/r/f', 1]].map(([channel, subscribers]) => ({ channel, subscribers }));
    await waitFor('every subscription counted', async () => (await get(nodes[0]!.port, '/admin/channels?pattern=/r/**')).channels.length === 6);
    for (const node of nodes) {
      for (const limit of [1, 2, 4]) assert.deepEqual(await allPages(node.port, '/r/**', limit), expected, `limit ${limit} on ${node.port}`);
    }
  });

  test('a node cut off from Redis is named unanswered within the wait, and answers again once it is back', async (t) => {
    const redis = await startRedis(t);
    const proxy = await startCutProxy(t, redis.port);
    const a = await startNode(t, redis.url, ARGS);
    const b = await startNode(t, redis.url, ARGS);
    const c = await startNode(t, proxy.url, ARGS);
    await subscribe(c.port, '/q/1', t);
    const full = await waitFor('three nodes answer', async () => {
      const answer = await get(a.port, '/admin/nodes');
      return answer.nodes.length === 3 ? answer : undefined;
    });
    const onC = full.nodes.find((node: { sessions: number }) => node.sessions === 1).node;
    proxy.cut();
    await waitFor('C to see Redis gone', async () => (await httpRequest(c.port, { path: '/ready' })).status !== 200);
    const started = Date.now();
    const cut = await get(a.port, '/admin/nodes');
    assert.ok(Date.now() - started < 3_000, 'answered within the wait');
    assert.deepEqual(cut.unanswered, [onC]);
    assert.equal(cut.nodes.length, 2);
    assert.deepEqual((await get(b.port, '/admin/channels?pattern=/q/**')).unanswered, [onC]);
    proxy.heal();
    await waitFor('C answers again', async () => {
      const answer = await get(a.port, '/admin/channels?pattern=/q/**');
      return answer.unanswered.length === 0 && answer.channels.length === 1;
    }, 15_000);
  });
});
