/**
 * Three `herald serve` processes on one Redis, clients behind sticky balancers: publishes reach
 * every node's clients; a node killed with -9 mid-stream and a Redis restart cost no message and
 * deliver none twice.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import type { ConnectionType } from '../../src/client/protocol.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startBalancer, startNode } from '../helpers/cluster.js';
import type { ClusterNode } from '../helpers/cluster.js';
import { httpRequest, postJson } from '../helpers/http.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

type Hookable = { after(fn: () => unknown): void };

interface Listener {
  readonly name: string;
  readonly got: { n: number; id: string | undefined }[];
}

async function startCluster(t: Hookable, redisUrl: string): Promise<ClusterNode[]> {
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await startNode(t, redisUrl, ['--history-size', '1000']));
  return nodes;
}

/** On each node (through a balancer that prefers it), a WebSocket and a long-polling client on `channel`. */
async function listenEverywhere(t: Hookable, nodes: readonly ClusterNode[], channel: string): Promise<Listener[]> {
  const ports = nodes.map((node) => node.port);
  const listeners: Listener[] = [];
  for (let i = 0; i < nodes.length; i++) {
    const balancer = await startBalancer(t, ports, i);
    for (const transport of ['websocket', 'long-polling'] as ConnectionType[]) {
      const herald = new Herald(`http://127.0.0.1:${balancer}/bayeux`, {
        shareConnection: false,
        WebSocket,
        transports: [transport],
        backoff: { initialMs: 20, maxMs: 200 },
      });
      onCleanup(t, () => herald.close());
      const listener: Listener = { name: `node ${i} over ${transport}`, got: [] };
      await herald.subscribe(channel, (data, info) => listener.got.push({ n: (data as { n: number }).n, id: info.id })).ready;
      listeners.push(listener);
    }
  }
  return listeners;
}

function assertEveryMessageOnce(listeners: readonly Listener[], count: number): void {
  const expected = Array.from({ length: count }, (_, i) => i);
  for (const listener of listeners) {
    assert.deepEqual(listener.got.map((m) => m.n), expected, `${listener.name}: every message once, in order`);
    assert.equal(new Set(listener.got.map((m) => m.id)).size, count, `${listener.name}: distinct ids`);
  }
}

async function sessionsOn(port: number): Promise<number> {
  return (await httpRequest(port, { path: '/health' })).json().sessions;
}

test('kill -9 of a node while messages flow: its clients move to another node and have every message exactly once', async (t) => {
  const redis = await startRedis(t);
  const nodes = await startCluster(t, redis.url);
  const listeners = await listenEverywhere(t, nodes, '/feed');
  const total = 300;
  for (let n = 0; n < total; n++) {
    if (n === 100) await nodes[0]!.kill();
    // Before the kill every node publishes in turn; after it, the two that are left.
    const port = n < 100 ? nodes[n % 3]!.port : nodes[1 + (n % 2)]!.port;
    const published = await postJson(port, '/pub/feed', { n });
    assert.equal(published.status, 200, published.text);
  }
  await waitFor('every client has every message', () => listeners.every((l) => l.got.length >= total), 30_000);
  assertEveryMessageOnce(listeners, total);
  assert.equal((await sessionsOn(nodes[1]!.port)) + (await sessionsOn(nodes[2]!.port)), 6, 'the dead node\'s two clients live on another node now');
});

test('Redis restarts mid-run: publishes meanwhile are refused with 503, then go through; every client has every message once', async (t) => {
  const redis = await startRedis(t);
  const nodes = await startCluster(t, redis.url);
  const listeners = await listenEverywhere(t, nodes, '/ticker');
  const total = 150;
  let refused = 0;
  for (let n = 0; n < total; n++) {
    const port = nodes[n % 3]!.port;
    if (n === 50) {
      await redis.stop();
      const during = await postJson(port, '/pub/ticker', { n });
      assert.equal(during.status, 503, 'a publish while Redis is down is refused, not dropped');
      refused++;
      await redis.start();
    }
    // A refused publish did not happen: retrying it cannot duplicate it.
    const published = await waitFor(`publish ${n} goes through`, async () => {
      const res = await postJson(port, '/pub/ticker', { n });
      if (res.status === 503) refused++;
      return res.status === 200 ? res : undefined;
    }, 20_000);
    assert.equal(published.status, 200);
  }
  assert.ok(refused >= 1);
  await waitFor('every client has every message', () => listeners.every((l) => l.got.length >= total), 30_000);
  assertEveryMessageOnce(listeners, total);
  for (const node of nodes) assert.equal((await httpRequest(node.port, { path: '/health' })).status, 200);
});
