/**
 * Server-side subscriptions on one node, through each way in: `POST /admin/subscribe` and
 * `/admin/unsubscribe`, `herald.serverSubscribe()` / `herald.serverUnsubscribe()`, and
 * `herald server-subscribe` / `server-unsubscribe`. Real server, raw Bayeux long-polls (the wire
 * exactly), REST streams, real CLI processes; the grants that let a client come back subscribed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { runCli } from '../helpers/cli.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream, postJson } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const KEY = 'server-subscriptions-test-key';
const ADMIN = { Authorization: `Bearer ${KEY}` };
const cli = (args: string[]) => runCli(args, KEY);
const NOTES = '/user/42/notifications';

/** A token that may subscribe to `/probe` only: every other channel is out of its own reach. */
function token(sub: string): Promise<string> {
  return new SignJWT({ subscribe: ['/probe'], publish: [] }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(Buffer.from(SECRET));
}

async function start(t: { after(fn: () => unknown): void }) {
  return startHerald(t, { jwtSecret: SECRET, publishKey: KEY, timeoutMs: 5_000 });
}

/**
 * A raw long-polling session that keeps a connect held and records everything the connects bring
 * (deliveries and notices), subscribed to `/probe`: a message published there after another
 * shows, by its arrival, that the other would have arrived first.
 */
class Peer {
  readonly raw: RawBayeux;
  readonly received: any[] = [];
  #stopped = false;

  private constructor(port: number) {
    this.raw = new RawBayeux(port);
  }

  static async open(port: number, sub: string, t: { after(fn: () => unknown): void }): Promise<Peer> {
    const peer = new Peer(port);
    const reply = await peer.raw.handshake({ ext: { auth: { token: await token(sub) } } });
    assert.equal(reply.successful, true, JSON.stringify(reply));
    await peer.raw.connect({ advice: { timeout: 0 } });
    assert.equal((await peer.raw.subscribe('/probe')).successful, true);
    // The server closes at the test's end, the poll with it.
    peer.#poll().catch(() => undefined);
    t.after(() => peer.stop());
    return peer;
  }

  async #poll(): Promise<void> {
    while (!this.#stopped) {
      const messages = (await this.raw.connect()).json() as any[];
      for (const message of messages) if (message.channel !== '/meta/connect') this.received.push(message);
      if (messages.some((message) => message.channel === '/meta/connect' && message.successful === false)) return;
    }
  }

  data(channel: string): unknown[] {
    return this.received.filter((message) => message.channel === channel && message.data !== undefined).map((message) => message.data);
  }

  notices(meta: '/meta/subscribe' | '/meta/unsubscribe'): any[] {
    return this.received.filter((message) => message.channel === meta);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.raw.send([{ channel: '/meta/disconnect', clientId: this.raw.clientId }]).catch(() => undefined);
  }
}

async function publish(port: number, channel: string, data: unknown): Promise<number> {
  const answer = await postJson(port, `/pub${channel}`, JSON.stringify(data), ADMIN);
  assert.equal(answer.status, 200, answer.text);
  return answer.json().subscribers;
}

/** Publishes on `/probe` and waits until every peer has it: what was published before has arrived. */
async function settle(port: number, peers: Peer[], mark: string): Promise<void> {
  await publish(port, '/probe', mark);
  await waitFor(`${mark} at every peer`, () => peers.every((peer) => peer.data('/probe').includes(mark)));
}

describe('server subscriptions on one node', () => {
  test('over HTTP by user: every live Bayeux session of the sub joins (whatever its rights), is told first, and gets the messages; others and REST streams do not', async (t) => {
    const { port, herald } = await start(t);
    const [phone, laptop, other] = [await Peer.open(port, '42', t), await Peer.open(port, '42', t), await Peer.open(port, '7', t)];
    const stream = await openStream(port, `/sub/probe?token=${await token('42')}`, { Accept: 'text/event-stream' }, t);
    await waitFor('four sessions', () => herald.sessionCount === 4);
    assert.equal((await phone.raw.subscribe(NOTES)).successful, false, 'the token alone may not subscribe there');
    await publish(port, NOTES, 'before');

    const answer = await postJson(port, '/admin/subscribe', { user: '42', channel: NOTES }, ADMIN);
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.json(), { ok: true, reachedHere: 2 });
    assert.equal(await publish(port, NOTES, 'hello'), 2, 'live when the answer came: the two sessions of user 42 only');
    for (const peer of [phone, laptop]) {
      await waitFor('the message', () => peer.data(NOTES).includes('hello'));
      const [notice] = peer.notices('/meta/subscribe');
      assert.equal(notice.successful, true);
      assert.equal(notice.subscription, NOTES);
      assert.equal(notice.ext.herald.server, true);
      assert.equal(typeof notice.ext.herald.grant, 'string');
      assert.equal(typeof notice.ext.herald.last, 'string', 'where the channel stood: a later session resumes after it');
      // The notice rides the queue ahead of the channel's first message.
      assert.ok(peer.received.indexOf(notice) < peer.received.findIndex((message) => message.data === 'hello'));
      assert.deepEqual(peer.data(NOTES), ['hello'], 'nothing from before');
    }
    await settle(port, [other], 'probe-1');
    assert.deepEqual(other.data(NOTES), []);
    assert.deepEqual(other.notices('/meta/subscribe'), []);
    assert.doesNotMatch(stream.text(), /notifications/, 'a REST stream keeps the channels its URL names');

    const off = await postJson(port, '/admin/unsubscribe', { user: '42', channel: NOTES }, ADMIN);
    assert.deepEqual(off.json(), { ok: true, reachedHere: 2 });
    assert.equal(await publish(port, NOTES, 'after'), 0);
    await settle(port, [phone, laptop], 'probe-2');
    for (const peer of [phone, laptop]) {
      assert.deepEqual(peer.data(NOTES), ['hello'], 'unsubscribe stops deliveries');
      const [notice] = peer.notices('/meta/unsubscribe');
      assert.deepEqual({ ...notice, ext: notice.ext }, { channel: '/meta/unsubscribe', successful: true, subscription: NOTES, ext: { herald: { server: true } } });
    }
    assert.deepEqual((await postJson(port, '/admin/unsubscribe', { user: '42', channel: NOTES }, ADMIN)).json(), { ok: true, reachedHere: 0 }, 'nobody holds it any more');
  });

  test('from code by session (its public id), a pattern: only that session; unsubscribe takes it off even a channel the client subscribed itself', async (t) => {
    const { port, herald } = await start(t);
    const [chosen, sibling] = [await Peer.open(port, '42', t), await Peer.open(port, '42', t)];
    const { sessions } = await herald.userSessions('42');
    assert.equal(sessions.length, 2);
    // Which peer the public id is, the deliveries tell.
    const id = sessions[0]!.id;
    const reached = await herald.serverSubscribe({ session: id, channel: '/team/7/**' });
    assert.deepEqual(reached, { reachedHere: 1 });
    assert.equal(await publish(port, '/team/7/general', 'hi team'), 1);
    const target = (await waitFor('one of the two has it', () => [chosen, sibling].find((peer) => peer.data('/team/7/general').includes('hi team'))))!;
    const bystander = target === chosen ? sibling : chosen;
    assert.deepEqual(target.notices('/meta/subscribe').map((notice) => [notice.subscription, notice.ext.herald.last]), [['/team/7/**', undefined]], 'a pattern has no position');

    assert.deepEqual(await herald.serverUnsubscribe({ session: id, channel: '/probe' }), { reachedHere: 1 }, 'the backend may take a session off its own subscription');
    assert.equal(await publish(port, '/probe', 'probe'), 1);
    await waitFor('the bystander probe', () => bystander.data('/probe').includes('probe'));
    assert.deepEqual(await herald.serverUnsubscribe({ session: 'no-such-session', channel: '/probe' }), { reachedHere: 0 });

    await assert.rejects(herald.serverSubscribe({ channel: NOTES } as never), { code: 'HERALD_ERR_INVALID_REQUEST', message: /exactly one of session, user \(got none\)/ });
    await assert.rejects(herald.serverSubscribe({ user: '42', session: id, channel: NOTES }), { code: 'HERALD_ERR_INVALID_REQUEST', message: /got session, user/ });
    await assert.rejects(herald.serverSubscribe({ user: '42' } as never), { code: 'HERALD_ERR_INVALID_REQUEST', message: /channel is required/ });
    await assert.rejects(herald.serverSubscribe({ user: '42', channel: '/meta/connect' }), { code: 'HERALD_ERR_INVALID_REQUEST', message: /not a broadcast channel/ });
    await assert.rejects(herald.serverUnsubscribe({ user: '42', channel: '/service/x' }), { code: 'HERALD_ERR_INVALID_REQUEST', message: /not a broadcast channel/ });
  });

  test('from the CLI: herald server-subscribe / server-unsubscribe; exit 1 with the server\'s words when it refuses', async (t) => {
    const { url, port } = await start(t);
    const peer = await Peer.open(port, 'carol', t);
    const done = await cli(['server-subscribe', '--user', 'carol', '--channel', '/alerts', '--url', url]);
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual(JSON.parse(done.stdout), { ok: true, reachedHere: 1 });
    await publish(port, '/alerts', 'fire');
    await waitFor('the alert', () => peer.data('/alerts').includes('fire'));
    const off = await cli(['server-unsubscribe', '--user', 'carol', '--channel', '/alerts', '--url', url]);
    assert.deepEqual(JSON.parse(off.stdout), { ok: true, reachedHere: 1 });
    assert.equal(await publish(port, '/alerts', 'again'), 0);
    const refused = await cli(['server-subscribe', '--user', 'carol', '--channel', 'alerts', '--url', url]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /HTTP 400.*not a broadcast channel or pattern/);
    const usage = await cli(['server-subscribe', '--user', 'carol', '--chanel', '/x', '--url', url]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /chanel/);
  });
});

describe('grants: coming back subscribed', () => {
  test('a later session of the same user subscribes with the grant whatever its rights, and gets a fresh one; no other user, channel or tampered grant is let in', async (t) => {
    const { port, herald } = await start(t);
    const first = await Peer.open(port, '42', t);
    await herald.serverSubscribe({ user: '42', channel: NOTES });
    const [notice] = await waitFor('the notice', () => first.notices('/meta/subscribe').length === 1 && first.notices('/meta/subscribe'));
    const grant: string = notice.ext.herald.grant;

    const later = await Peer.open(port, '42', t);
    const subscribe = (subscription: string, herald: Record<string, unknown>, peer = later) =>
      peer.raw.send([{ channel: '/meta/subscribe', clientId: peer.raw.clientId, subscription, id: peer.raw.nextId(), ext: { herald } }]).then((res) => res.json()[0]);
    const again = await subscribe(NOTES, { grant, since: notice.ext.herald.last });
    assert.equal(again.successful, true, JSON.stringify(again));
    assert.equal(typeof again.ext.herald.grant, 'string');
    assert.notEqual(again.ext.herald.grant, grant, 'renewed');
    assert.equal(await publish(port, NOTES, 'both'), 2);

    const stranger = await Peer.open(port, '7', t);
    assert.match((await subscribe(NOTES, { grant }, stranger)).error, /^403:.*subscribe_denied/, "another user's session");
    assert.match((await subscribe('/user/42/other', { grant }, stranger)).error, /^403:/, 'another channel');
    const [payload, signature] = grant.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), s: '7' })).toString('base64url');
    assert.match((await subscribe(NOTES, { grant: `${forged}.${signature}` }, stranger)).error, /^403:/, 'a tampered grant');
    assert.match((await subscribe(NOTES, { grant: 'garbage' }, stranger)).error, /^403:/);
    assert.match((await subscribe(NOTES, { grant: 12 }, stranger)).error, /^403:/);
  });

  test('an unsubscribe withdraws the grants issued before it: a client between two sessions then cannot come back subscribed', async (t) => {
    const { port, herald } = await start(t);
    const peer = await Peer.open(port, '42', t);
    await herald.serverSubscribe({ user: '42', channel: NOTES });
    const [notice] = await waitFor('the notice', () => peer.notices('/meta/subscribe').length === 1 && peer.notices('/meta/subscribe'));
    await peer.stop();
    await waitFor('the session gone', () => herald.sessionCount === 0);
    assert.deepEqual(await herald.serverUnsubscribe({ user: '42', channel: NOTES }), { reachedHere: 0 });
    const back = await Peer.open(port, '42', t);
    const reply = (await back.raw.send([{ channel: '/meta/subscribe', clientId: back.raw.clientId, subscription: NOTES, ext: { herald: { grant: notice.ext.herald.grant } } }])).json()[0];
    assert.equal(reply.successful, false);
    assert.match(reply.error, /^403:\/user\/42\/notifications:subscribe_denied/);

    // Subscribed anew, a fresh grant holds again.
    await herald.serverSubscribe({ user: '42', channel: NOTES });
    const [fresh] = await waitFor('a new notice', () => back.notices('/meta/subscribe').length === 1 && back.notices('/meta/subscribe'));
    const third = await Peer.open(port, '42', t);
    const ok = (await third.raw.send([{ channel: '/meta/subscribe', clientId: third.raw.clientId, subscription: NOTES, ext: { herald: { grant: fresh.ext.herald.grant } } }])).json()[0];
    assert.equal(ok.successful, true, JSON.stringify(ok));
  });
});

describe('refusals: clear 4xx, never 5xx', () => {
  const cases: [string, { method?: string; path?: string; headers?: Record<string, string>; body?: string }, number, RegExp][] = [
    ['no key', { headers: {} }, 401, /missing API key/],
    ['GET', { method: 'GET', body: '' }, 405, /use POST/],
    ['not JSON', { headers: { ...ADMIN, 'Content-Type': 'text/plain' }, body: 'user=1' }, 415, /as JSON/],
    ['malformed JSON', { body: '{"user":' }, 400, /malformed JSON/],
    ['an array', { body: '[]' }, 400, /JSON object such as \{"user": "42", "channel"/],
    ['an unknown field', { body: '{"user":"a","channel":"/a","reason":"x"}' }, 400, /"reason" is not a field: use user or session, and channel/],
    ['no channel', { body: '{"user":"a"}' }, 400, /channel is required/],
    ['a channel not a string', { body: '{"user":"a","channel":["/a"]}' }, 400, /channel must be a string/],
    ['a meta channel', { body: '{"user":"a","channel":"/meta/**"}' }, 400, /not a broadcast channel or pattern/],
    ['a bad pattern', { path: '/admin/unsubscribe', body: '{"user":"a","channel":"/a/**/b"}' }, 400, /not a broadcast channel or pattern/],
    ['an empty user', { body: '{"user":"","channel":"/a"}' }, 400, /user must be a non-empty string/],
    ['a session and a user', { body: '{"user":"a","session":"b","channel":"/a"}' }, 400, /exactly one of session, user \(got session, user\)/],
    ['a huge body', { body: JSON.stringify({ user: 'a', channel: `/${'x'.repeat(10_000)}` }) }, 413, /exceeds/],
    ['an unknown path', { path: '/admin/subscriptions' }, 404, /use \/admin\/disconnect, \/admin\/revoke, \/admin\/subscribe, \/admin\/unsubscribe/],
  ];
  test('each bad request is refused naming the problem', async (t) => {
    const { port } = await start(t);
    for (const [what, request, status, message] of cases) {
      const answer = await httpRequest(port, {
        method: request.method ?? 'POST',
        path: request.path ?? '/admin/subscribe',
        headers: { 'Content-Type': 'application/json', ...(request.headers ?? ADMIN) },
        body: request.body ?? '{"user":"a","channel":"/a"}',
      });
      assert.equal(answer.status, status, `${what}: ${answer.text}`);
      assert.match(answer.json().error, message, what);
    }
    const token42 = await token('42');
    const answer = await postJson(port, '/admin/subscribe', { user: '42', channel: '/a' }, { Authorization: `Bearer ${token42}` });
    assert.equal(answer.status, 403, 'a token is not the key');
  });
});
