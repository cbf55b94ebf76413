/**
 * Subscribing on a node whose Redis is out of reach. A resume there cannot read history: it is a
 * gap, and the subscription stays live — it was answered `503` and the Herald client dropped it for
 * good, stranded without a word (the checker's seed 1974682402, three nodes: the Herald client over
 * long-polling after a node was killed while Redis went away). A subscribe that is answered `503`
 * (one that needs a resume point) is asked again after the advised interval, not given up.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Herald } from '../../src/client/herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startBalancer, startNode } from '../helpers/cluster.js';
import { httpRequest, postJson } from '../helpers/http.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

type Hookable = { after(fn: () => unknown): void };

/** fetch, noting each refused subscribe the server answers. */
function observingFetch(refusals: string[]): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    try {
      for (const reply of JSON.parse(await response.clone().text())) {
        if (reply.channel === '/meta/subscribe' && reply.successful === false) refusals.push(reply.error);
      }
    } catch {
      /* not a Bayeux batch: the client says so itself */
    }
    return response;
  };
}

/** A long-polling Herald client through `port`, recording what it gets, its gap events and its errors. */
function client(t: Hookable, port: number, refusals: string[] = []) {
  const herald = new Herald(`http://127.0.0.1:${port}/bayeux`, {
    shareConnection: false,
    transports: ['long-polling'],
    backoff: { initialMs: 20, maxMs: 200 },
    fetch: observingFetch(refusals),
  });
  onCleanup(t, () => herald.close());
  const seen = { herald, got: [] as number[], gaps: [] as string[], errors: [] as string[] };
  herald.on('gap', (channel) => seen.gaps.push(channel));
  herald.on('error', (error) => seen.errors.push(error.message));
  return seen;
}

const subscribe = (seen: ReturnType<typeof client>, channel: string) => seen.herald.subscribe(channel, (data) => seen.got.push((data as { n: number }).n)).ready;

async function publishOnceReady(port: number, channel: string, n: number): Promise<void> {
  await waitFor('the node is ready', async () => (await httpRequest(port, { path: '/ready' }).catch(() => undefined))?.status === 200);
  await waitFor('a publish is taken', async () => (await postJson(port, `/pub${channel}`, { n })).status === 200);
}

test('a client resumes on a node whose Redis is out of reach (it moved there: its node was killed): told of the gap, it stays subscribed and receives', async (t) => {
  const redis = await startRedis(t);
  const args = ['--history-size', '100'];
  const first = await startNode(t, redis.url, args);
  const second = await startNode(t, redis.url, args);
  const balancer = await startBalancer(t, [first.port, second.port], 0);
  const seen = client(t, balancer);
  await subscribe(seen, '/moved');
  assert.equal((await postJson(second.port, '/pub/moved', { n: 1 })).status, 200);
  await waitFor('the first message', () => seen.got.includes(1));

  await redis.stop();
  await first.kill();
  // The client handshakes on the second node and resumes '/moved' there: its history cannot be read.
  await waitFor('the resume is answered with a gap', () => seen.gaps.includes('/moved'));
  await redis.start();
  await publishOnceReady(second.port, '/moved', 2);
  await waitFor('the client receives what is published after', () => seen.got.includes(2), 5_000);
  assert.deepEqual(seen.got, [1, 2], 'each once');
  assert.ok(seen.gaps.every((channel) => channel === '/moved'), seen.gaps.join());
  assert.deepEqual(seen.errors, [], 'no refusal reached the application');
});

test('a subscribe answered 503 (no resume point while Redis is out of reach) is asked again after the advised interval, not given up', async (t) => {
  const redis = await startRedis(t);
  const node = await startNode(t, redis.url, ['--history-size', '100']);
  await redis.stop();
  const refusals: string[] = [];
  const seen = client(t, node.port, refusals);
  const ready = subscribe(seen, '/later');
  await waitFor('the subscribe is refused for now', () => refusals.length > 0);
  assert.equal(refusals[0], '503::engine_unavailable');
  await redis.start();
  await ready;
  await publishOnceReady(node.port, '/later', 1);
  await waitFor('the client receives', () => seen.got.includes(1), 5_000);
  assert.deepEqual(seen.got, [1]);
  assert.deepEqual(seen.errors, [], 'no refusal reached the application');
});
