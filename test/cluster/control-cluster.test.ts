/**
 * The control plane across a cluster: three `herald serve` processes joined through a real Redis.
 * A kick or a revocation asked of node A ends the sessions it names on node C within a second;
 * a revocation is kept in Redis, so nodes started afterwards — even once every node was killed —
 * refuse the token at handshake and over REST.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { startNode } from '../helpers/cluster.js';
import { startCutProxy } from '../helpers/cut-proxy.js';
import type { ClusterNode } from '../helpers/cluster.js';
import { httpRequest, openStream, postJson } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const KEY = 'control-cluster-test-key';
const ADMIN = { Authorization: `Bearer ${KEY}` };
const ARGS = ['--jwt-secret', SECRET, '--publish-key', KEY];
/** The promise: every node acts within a second of the request. */
const WITHIN_MS = 1_000;
type Hookable = { after(fn: () => unknown): void };

const token = (sub: string, claims: Record<string, unknown> = {}) =>
  new SignJWT({ subscribe: ['/**'], publish: ['/**'], ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt(Math.floor(Date.now() / 1000) - 10)
    .setExpirationTime('1h')
    .sign(Buffer.from(SECRET));

async function cluster(t: Hookable) {
  const redis = await startRedis(t);
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await startNode(t, redis.url, ARGS));
  return { redis, nodes };
}

/**
 * A long-polling session on `port` acting with `jwt`, subscribed, its connect held: `answer` is
 * everything that connect brings back, `reply` its /meta/connect reply.
 */
async function heldSession(port: number, jwt: string, channel = '/team/a') {
  const peer = new RawBayeux(port);
  assert.equal((await peer.handshake({ ext: { auth: { token: jwt } } })).successful, true);
  await peer.connect({ advice: { timeout: 0 } });
  assert.equal((await peer.subscribe(channel)).successful, true);
  const answer: Promise<any[]> = peer.connect().then((res) => res.json());
  return { peer, answer, reply: answer.then((messages) => messages.find((message) => message.channel === '/meta/connect')) };
}

/** How long `reply` takes to come once `act` is done, failing past WITHIN_MS. */
async function timed<T>(what: string, act: () => Promise<unknown>, reply: Promise<T>): Promise<T> {
  await act();
  return withTimeout(what, reply, WITHIN_MS);
}

describe('the control plane on three Redis nodes', () => {
  test('a ban asked of A while C is cut off from Redis: once C is back, the session it held ends; one opened on C meanwhile stays', async (t) => {
    const redis = await startRedis(t);
    const proxy = await startCutProxy(t, redis.port);
    const a = await startNode(t, redis.url, ARGS);
    const c = await startNode(t, proxy.url, ARGS);
    const mallory = await token('mallory');
    const before = await heldSession(c.port, mallory);
    proxy.cut();
    await waitFor('C to see Redis gone', async () => (await httpRequest(c.port, { path: '/ready' })).status !== 200);
    assert.equal((await postJson(a.port, '/admin/disconnect', { user: 'mallory', reconnect: false }, ADMIN)).status, 200);
    const meanwhile = new RawBayeux(c.port);
    assert.equal((await meanwhile.handshake({ ext: { auth: { token: mallory } } })).successful, true);
    proxy.heal();
    const reply = await withTimeout('the held connect on C once it is back', before.reply, 10_000);
    assert.equal(reply.error, '403:banned:session_closed');
    await waitFor('C ready again', async () => (await httpRequest(c.port, { path: '/ready' })).status === 200);
    // The kick reached C (it acted on the first session) before this: the later session was spared.
    const later = await meanwhile.connect({ advice: { timeout: 0 } });
    assert.equal(later.json().find((message: any) => message.channel === '/meta/connect')?.successful, true, JSON.stringify(later.json()));
  });

  test('a kick asked of node A ends the user\'s sessions and streams on nodes B and C within a second, and only theirs', async (t) => {
    const { nodes } = await cluster(t);
    const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const mallory = await token('mallory');
    const onC = await heldSession(c.port, mallory);
    const bystander = await heldSession(c.port, await token('alice'));
    const stream = await openStream(b.port, `/sub/team/a?token=${mallory}`, { Accept: 'text/event-stream' }, t);
    const streamEnded = once(stream.res, 'end');
    const reply = await timed('the held connect on C', () => postJson(a.port, '/admin/disconnect', { user: 'mallory', reason: 'spam', reconnect: false }, ADMIN), onC.reply);
    assert.equal(reply.error, '403:banned,spam:session_closed');
    assert.deepEqual(reply.advice, { reconnect: 'none' });
    await withTimeout('the stream on B to end', streamEnded, WITHIN_MS);
    assert.match(stream.text(), /event: close\ndata: \{"reason":"banned","note":"spam"\}/);
    // The bystander on C still receives a message published on A.
    await postJson(a.port, '/pub/team/a', { still: 'here' }, ADMIN);
    const delivered = await withTimeout('the message on C', bystander.answer, WITHIN_MS);
    assert.ok(delivered.some((message) => message.data?.still === 'here'), JSON.stringify(delivered));
  });

  test('a kick by channel pattern with reconnect asked of A: the subscriber on C is told to handshake again within a second', async (t) => {
    const { nodes } = await cluster(t);
    const [a, , c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const onC = await heldSession(c.port, await token('bob'), '/game/9/moves');
    const reply = await timed('the held connect on C', () => postJson(a.port, '/admin/disconnect', { channel: '/game/9/**' }, ADMIN), onC.reply);
    assert.equal(reply.error, '402:kicked:session_closed');
    assert.equal(reply.advice.reconnect, 'handshake');
    assert.equal((await onC.peer.handshake({ ext: { auth: { token: await token('bob') } } })).successful, true, 'and may');
  });

  test('a revocation asked of A ends the session on C within a second, is refused on every node, and outlives every node', async (t) => {
    const { redis, nodes } = await cluster(t);
    const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const leaked = await token('dave', { jti: 'leaked-7' });
    const onC = await heldSession(c.port, leaked);
    const until = Math.floor(Date.now() / 1000) + 3600;
    const reply = await timed('the held connect on C', () => postJson(a.port, '/admin/revoke', { jti: 'leaked-7', until }, ADMIN), onC.reply);
    assert.equal(reply.error, '403:token_revoked:session_closed');
    assert.deepEqual(reply.advice, { reconnect: 'none' });
    assert.equal((await new RawBayeux(b.port).handshake({ ext: { auth: { token: leaked } } })).error, '403:token_revoked:handshake_denied');
    await refusedOverRest(c.port, leaked);

    // Every node killed (no goodbye); a node started afterwards reads the revocation back from Redis.
    await Promise.all(nodes.map((node) => node.kill()));
    const fresh = await startNode(t, redis.url, ARGS);
    assert.equal((await new RawBayeux(fresh.port).handshake({ ext: { auth: { token: leaked } } })).error, '403:token_revoked:handshake_denied');
    await refusedOverRest(fresh.port, leaked);
    assert.equal((await new RawBayeux(fresh.port).handshake({ ext: { auth: { token: await token('dave') } } })).successful, true, 'the subject\'s other tokens still work');
  });

  test('a subject revoked on A: a node that was started before hears it, one started after reads it; tokens issued later are accepted', async (t) => {
    const { redis, nodes } = await cluster(t);
    const [a, , c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const old = await token('erin');
    const onC = await heldSession(c.port, old);
    const reply = await timed('the held connect on C', () => postJson(a.port, '/admin/revoke', { sub: 'erin', until: new Date(Date.now() + 3600_000).toISOString() }, ADMIN), onC.reply);
    assert.equal(reply.error, '403:token_revoked:session_closed');
    const later = await startNode(t, redis.url, ARGS);
    assert.equal((await new RawBayeux(later.port).handshake({ ext: { auth: { token: old } } })).error, '403:token_revoked:handshake_denied');
    const issuedAfter = await new SignJWT({ subscribe: ['/**'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('erin').setIssuedAt(Math.floor(Date.now() / 1000) + 2).setExpirationTime('1h').sign(Buffer.from(SECRET));
    assert.equal((await new RawBayeux(later.port).handshake({ ext: { auth: { token: issuedAfter } } })).successful, true, 'issued after the revocation');
  });
});

async function refusedOverRest(port: number, jwt: string): Promise<void> {
  const publish = await httpRequest(port, { method: 'POST', path: '/pub/team/a', headers: { Authorization: `Bearer ${jwt}`, 'Content-Type': 'application/json' }, body: '1' });
  assert.equal(publish.status, 403);
  assert.deepEqual(publish.json(), { error: 'token revoked' });
  const subscribe = await httpRequest(port, { path: `/sub/team/a?token=${jwt}` });
  assert.equal(subscribe.status, 403);
}
