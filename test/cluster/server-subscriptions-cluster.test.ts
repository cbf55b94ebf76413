/**
 * Server subscriptions across a cluster: three `herald serve` processes joined through a real
 * Redis. A subscription asked of node A puts the user's sessions on node C on the channel within a
 * second (told, then delivered what is published on A); the grant C handed out lets the client
 * back in on node B; an unsubscribe asked of A takes C's session off and withdraws that grant on B,
 * and on a node started afterwards.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { startNode } from '../helpers/cluster.js';
import type { ClusterNode } from '../helpers/cluster.js';
import { postJson } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const KEY = 'server-subscriptions-cluster-key';
const ADMIN = { Authorization: `Bearer ${KEY}` };
const ARGS = ['--jwt-secret', SECRET, '--publish-key', KEY];
/** The promise: every node acts within a second of the request. */
const WITHIN_MS = 1_000;
const NOTES = '/user/42/notifications';

/** May subscribe to `/probe` only: the notifications channel is out of its own reach. */
const token = (sub: string) =>
  new SignJWT({ subscribe: ['/probe'] }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(Buffer.from(SECRET));

async function session(port: number, sub: string): Promise<RawBayeux> {
  const peer = new RawBayeux(port);
  assert.equal((await peer.handshake({ ext: { auth: { token: await token(sub) } } })).successful, true);
  await peer.connect({ advice: { timeout: 0 } });
  return peer;
}

/** Connects (held) again and again until a message on `channel` comes back, within `deadline`. */
async function until(peer: RawBayeux, channel: string, deadline: number): Promise<any> {
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`nothing on ${channel} within the deadline`);
    const messages = (await withTimeout(`a connect on ${channel}`, peer.connect({ advice: { timeout: left } }), left + 500)).json() as any[];
    const found = messages.find((message) => message.channel === channel);
    if (found !== undefined) return found;
  }
}

function subscribeWith(peer: RawBayeux, grant: string): Promise<any> {
  return peer.send([{ channel: '/meta/subscribe', clientId: peer.clientId, subscription: NOTES, id: peer.nextId(), ext: { herald: { grant } } }]).then((res) => res.json()[0]);
}

describe('server subscriptions on three Redis nodes', () => {
  test('asked of A: the user\'s session on C is told and gets what A publishes within a second; its grant lets it back in on B; an unsubscribe asked of A ends it on C and withdraws the grant on B', async (t) => {
    const redis = await startRedis(t);
    const nodes: ClusterNode[] = [];
    for (let i = 0; i < 3; i++) nodes.push(await startNode(t, redis.url, ARGS));
    const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const onC = await session(c.port, '42');
    const other = await session(c.port, '7');

    const started = Date.now();
    const answer = await postJson(a.port, '/admin/subscribe', { user: '42', channel: NOTES }, ADMIN);
    assert.deepEqual(answer.json(), { ok: true, reachedHere: 0 }, 'no session of user 42 on A');
    const notice = await until(onC, '/meta/subscribe', started + WITHIN_MS);
    assert.equal(notice.subscription, NOTES);
    assert.equal(notice.ext.herald.server, true);

    // Live on C (its engine subscription made) once C's inspection says so; then A publishes.
    await waitFor('the subscription live on C', async () => {
      const { sessions } = (await (await fetch(`http://127.0.0.1:${a.port}/admin/users/42/sessions`, { headers: ADMIN })).json()) as { sessions: { subscriptions: string[] }[] };
      return sessions.some((s) => s.subscriptions.includes(NOTES));
    });
    const published = Date.now();
    assert.equal((await postJson(a.port, `/pub${NOTES}`, '"hello"', ADMIN)).status, 200);
    const message = await until(onC, NOTES, published + WITHIN_MS);
    assert.equal(message.data, 'hello');
    assert.equal((await other.subscribe(NOTES)).successful, false, 'user 7 is neither subscribed nor allowed');

    // A later session of user 42, on another node, subscribes with the grant C handed out.
    const onB = await session(b.port, '42');
    const back = await subscribeWith(onB, notice.ext.herald.grant);
    assert.equal(back.successful, true, JSON.stringify(back));

    const unsubscribed = Date.now();
    assert.deepEqual((await postJson(a.port, '/admin/unsubscribe', { user: '42', channel: NOTES }, ADMIN)).json(), { ok: true, reachedHere: 0 });
    const off = await until(onC, '/meta/unsubscribe', unsubscribed + WITHIN_MS);
    assert.deepEqual(off.ext, { herald: { server: true } });
    await until(onB, '/meta/unsubscribe', unsubscribed + WITHIN_MS);
    // B heard the unsubscribe: the grant issued before it no longer lets anyone in there.
    const again = await subscribeWith(await session(b.port, '42'), notice.ext.herald.grant);
    assert.equal(again.successful, false);
    assert.match(again.error, /subscribe_denied/);
    // A node started after the unsubscribe reads the withdrawal from Redis: the grant is refused there too.
    const d = await startNode(t, redis.url, ARGS);
    const onD = await subscribeWith(await session(d.port, '42'), notice.ext.herald.grant);
    assert.equal(onD.successful, false, JSON.stringify(onD));
    assert.match(onD.error, /subscribe_denied/);
  });
});
