/**
 * Batch publish, idempotency keys and inspection across a cluster: three `herald serve` processes
 * joined through a real Redis. A batch published on node A reaches subscribers on C in order; a
 * batch whose publisher cut its connection to A before reading the answer, sent again to B, takes
 * effect once and answers the same ids; inspection asked of A lists the channels and sessions
 * living on B and C, and names a node that died instead of waiting for it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { startNode } from '../helpers/cluster.js';
import type { ClusterNode } from '../helpers/cluster.js';
import { httpRequest, openStream, postJson } from '../helpers/http.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const KEY = 'batch-inspect-cluster-key';
const BACKEND = { Authorization: `Bearer ${KEY}` };
const ARGS = ['--jwt-secret', SECRET, '--publish-key', KEY];
const MAIN = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));
type Hookable = { after(fn: () => unknown): void };

const token = (sub: string) =>
  new SignJWT({ subscribe: ['/**'], publish: ['/**'] }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('1h').sign(Buffer.from(SECRET));

async function cluster(t: Hookable): Promise<[ClusterNode, ClusterNode, ClusterNode]> {
  const redis = await startRedis(t);
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await startNode(t, redis.url, ARGS));
  return nodes as [ClusterNode, ClusterNode, ClusterNode];
}

/** An SSE subscriber acting as `sub`: the messages it received so far. */
async function subscriber(port: number, channel: string, t: Hookable, sub = 'watcher') {
  const stream = await openStream(port, `/sub${channel}?token=${await token(sub)}`, { Accept: 'text/event-stream' }, t);
  return (): { id: string; data: unknown }[] =>
    stream
      .text()
      .split('\n')
      .filter((line) => line.startsWith('data: {"id"'))
      .map((line) => JSON.parse(line.slice(6)));
}

const get = (port: number, path: string) => httpRequest(port, { path, headers: BACKEND });

describe('batch publish on three Redis nodes', () => {
  test('a batch published on A reaches subscribers on C, in order per channel', async (t) => {
    const [a, , c] = await cluster(t);
    const onC = await subscriber(c.port, '/feed', t);
    const other = await subscriber(c.port, '/other', t);
    const batch = [1, 2, 3, 4, 5].map((n) => ({ channel: n === 3 ? '/other' : '/feed', data: n }));
    const answer = await postJson(a.port, '/pub', batch, BACKEND);
    assert.equal(answer.status, 200, answer.text);
    const ids = answer.json().results.map((result: { id: string }) => result.id);
    await waitFor('C has them', () => onC().length === 4 && other().length === 1);
    assert.deepEqual(onC().map((message) => message.data), [1, 2, 4, 5]);
    assert.deepEqual(onC().map((message) => message.id), [ids[0], ids[1], ids[3], ids[4]]);
  });

  test('a batch whose publisher cut its connection to A before the answer, sent again to B, takes effect once and answers the same ids', async (t) => {
    const [a, b, c] = await cluster(t);
    const onC = await subscriber(c.port, '/pay', t);
    const batch = JSON.stringify([1, 2, 3].map((n) => ({ channel: '/pay', data: n, idempotencyKey: `payment-${n}` })));
    const socket = connect(a.port, '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    socket.write(`POST /pub HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: ${Buffer.byteLength(batch)}\r\n\r\n${batch}`);
    await waitFor('the first attempt reached C', () => onC().length === 3);
    socket.destroy();
    const retry = await postJson(b.port, '/pub', batch, BACKEND);
    assert.equal(retry.status, 200, retry.text);
    const results = retry.json().results as { id: string; duplicate?: boolean }[];
    assert.deepEqual(results.map((result) => result.id), onC().map((message) => message.id), 'the ids of the first attempt');
    assert.ok(results.every((result) => result.duplicate === true));
    // Once more, to C itself, one at a time: still the same message.
    const single = await httpRequest(c.port, { method: 'POST', path: '/pub/pay', headers: { ...BACKEND, 'Content-Type': 'application/json', 'Idempotency-Key': 'payment-2' }, body: '2' });
    assert.deepEqual(single.json(), { id: results[1]!.id, channel: '/pay', subscribers: 0, duplicate: true });
    const history = (await get(c.port, '/history/pay')).json().messages.map((message: { data: number }) => message.data);
    assert.deepEqual(history, [1, 2, 3], 'stored once');
    // A later message proves nothing more was on its way to C.
    await postJson(a.port, '/pub/pay', 4, BACKEND);
    await waitFor('the later message', () => onC().length === 4);
    assert.deepEqual(onC().map((message) => message.data), [1, 2, 3, 4]);
  });
});

describe('inspection on three Redis nodes', () => {
  test("A lists the channels, a user's sessions and the nodes of B and C; a node killed is named, not waited for", async (t) => {
    const [a, b, c] = await cluster(t);
    await subscriber(b.port, '/room/1', t, 'carol');
    await subscriber(c.port, '/room/1', t, 'carol');
    await subscriber(c.port, '/room/2', t, 'dave');
    const nodes = (await waitFor('three nodes answer', async () => {
      const answer = (await get(a.port, '/admin/nodes')).json();
      return answer.nodes.length === 3 && answer.nodes.reduce((sum: number, node: { sessions: number }) => sum + node.sessions, 0) === 3 ? answer : undefined;
    })) as { nodes: { node: string; sessions: number; transports: Record<string, number> }[]; unanswered: string[] };
    assert.deepEqual(nodes.unanswered, []);
    assert.deepEqual(nodes.nodes.map((node) => node.sessions).sort(), [0, 1, 2]);
    const onC = nodes.nodes.find((node) => node.sessions === 2)!;
    const onB = nodes.nodes.find((node) => node.sessions === 1)!;
    assert.deepEqual(onC.transports, { 'rest-sse': 2 });

    const channels = (await get(a.port, '/admin/channels?pattern=/room/**')).json();
    assert.deepEqual(channels, { channels: [{ channel: '/room/1', subscribers: 2 }, { channel: '/room/2', subscribers: 1 }], unanswered: [] });
    // Paging across nodes: each page is the cluster's, whichever node holds what.
    const first = (await get(a.port, '/admin/channels?pattern=/room/**&limit=1')).json();
    assert.deepEqual(first.channels, [{ channel: '/room/1', subscribers: 2 }]);
    assert.deepEqual((await get(a.port, `/admin/channels?pattern=/room/**&limit=1&cursor=${first.cursor}`)).json().channels, [{ channel: '/room/2', subscribers: 1 }]);

    const carol = (await get(a.port, '/admin/users/carol/sessions')).json();
    assert.deepEqual(carol.sessions.map((session: { node: string }) => session.node).sort(), [onB.node, onC.node].sort());
    assert.ok(carol.sessions.every((session: { transport: string; subscriptions: string[] }) => session.transport === 'rest-sse' && session.subscriptions[0] === '/room/1'));

    const child = spawn(process.execPath, [MAIN, 'channels', '--pattern', '/room/**', '--url', `http://127.0.0.1:${a.port}`], { env: { ...process.env, HERALD_PUBLISH_KEY: KEY }, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(stdout).channels, channels.channels);

    await c.kill();
    const started = Date.now();
    const after = (await get(a.port, '/admin/nodes')).json();
    assert.ok(Date.now() - started < 3_000, 'answered within the wait');
    assert.deepEqual(after.unanswered, [onC.node], 'the dead node is named');
    assert.equal(after.nodes.length, 2);
    assert.deepEqual((await get(a.port, '/admin/channels?pattern=/room/**')).json().channels, [{ channel: '/room/1', subscribers: 1 }]);
  });
});
