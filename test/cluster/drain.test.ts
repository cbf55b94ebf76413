/**
 * Graceful draining in a cluster: SIGTERM to a `herald serve` node behind a balancer. Its clients
 * are told to go at moments spread over the drain window, reconnect to the other node, resume, and
 * miss nothing; the node exits 0 within its deadline.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import type { ConnectionType } from '../../src/client/protocol.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startBalancer, startNode } from '../helpers/cluster.js';
import { httpRequest, postJson } from '../helpers/http.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const WINDOW_MS = 2000;
const GRACE_MS = 6000;

test('SIGTERM: clients are moved to another node over the drain window, miss nothing, and the node exits 0 in time', async (t) => {
  const redis = await startRedis(t);
  const args = ['--history-size', '2000', '--drain-window', `${WINDOW_MS}ms`, '--shutdown-grace', `${GRACE_MS}ms`];
  const leaving = await startNode(t, redis.url, args);
  const staying = await startNode(t, redis.url, args);
  const balancer = await startBalancer(t, [leaving.port, staying.port], 0);

  const clients: { name: string; got: number[]; reconnectedAt: number[] }[] = [];
  for (let i = 0; i < 10; i++) {
    const transport: ConnectionType = i % 2 === 0 ? 'websocket' : 'long-polling';
    const herald = new Herald(`http://127.0.0.1:${balancer}/bayeux`, { shareConnection: false, WebSocket, transports: [transport], backoff: { initialMs: 50, maxMs: 500 } });
    onCleanup(t, () => herald.close());
    const client = { name: `client ${i} over ${transport}`, got: [] as number[], reconnectedAt: [] as number[] };
    herald.on('state', (state) => state === 'reconnecting' && client.reconnectedAt.push(Date.now()));
    await herald.subscribe('/drain', (data: { n: number }) => client.got.push(data.n)).ready;
    clients.push(client);
  }
  assert.equal((await httpRequest(leaving.port, { path: '/health' })).json().sessions, 10, 'every client starts on the node that will leave');

  let n = 0;
  const publish = async () => {
    const res = await postJson(staying.port, '/pub/drain', { n });
    assert.equal(res.status, 200, res.text);
    n++;
  };
  for (let i = 0; i < 30; i++) await publish();

  const exited = once(leaving.child, 'exit');
  const termAt = Date.now();
  leaving.child.kill('SIGTERM');
  let exitedAt: number | undefined;
  let code: number | null | undefined;
  void exited.then(([exitCode]) => {
    exitedAt = Date.now();
    code = exitCode as number | null;
  });
  // Messages keep flowing through the whole drain, and after it.
  while (exitedAt === undefined || n < 300) {
    await publish();
    await new Promise((resolve) => setTimeout(resolve, 5)); // pacing, so publishes span the window
    assert.ok(Date.now() - termAt < GRACE_MS + 5000, 'the node exits within its deadline');
  }
  assert.equal(code, 0, 'exit code 0');
  assert.ok(exitedAt - termAt < GRACE_MS, `exited ${exitedAt - termAt} ms after SIGTERM (deadline ${GRACE_MS} ms)`);

  await waitFor('every client has every message', () => clients.every((c) => c.got.length >= n), 20_000).catch((error: Error) => {
    throw new Error(`${error.message}: ${clients.map((c) => `${c.name} has ${c.got.length}/${n} (missing ${Array.from({ length: n }, (_, i) => i).filter((i) => !c.got.includes(i)).join(',')}), reconnected ${c.reconnectedAt.map((at) => at - termAt).join('/')} ms after SIGTERM`).join('; ')}`);
  });
  const expected = Array.from({ length: n }, (_, i) => i);
  for (const client of clients) assert.deepEqual(client.got, expected, `${client.name}: every message once, in order`);
  assert.equal((await httpRequest(staying.port, { path: '/health' })).json().sessions, 10, 'all moved to the node that stays');

  // Told to go at moments spread over the window, not all at once.
  const moments = clients.map((c) => c.reconnectedAt[0]!);
  assert.ok(moments.every((m) => m !== undefined && m >= termAt), 'every client was told to reconnect');
  const spread = Math.max(...moments) - Math.min(...moments);
  assert.ok(spread >= WINDOW_MS * 0.2, `reconnects spread over ${spread} ms of a ${WINDOW_MS} ms window`);
  assert.ok(Math.max(...moments) - termAt <= WINDOW_MS + 1000, 'and all within the window');
});
