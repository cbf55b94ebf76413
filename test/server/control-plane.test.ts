/**
 * The control plane on one node, through each way in: `POST /admin/disconnect` and
 * `/admin/revoke`, `herald.disconnect()` / `herald.revoke()`, and `herald kick` / `herald revoke`.
 * Real server, raw Bayeux long-polls and REST streams, real CLI processes.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { runCli } from '../helpers/cli.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream, postJson } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const KEY = 'control-plane-test-key';
const ADMIN = { Authorization: `Bearer ${KEY}` };
const cli = (args: string[]) => runCli(args, KEY);
const nowS = () => Math.floor(Date.now() / 1000);

function token(sub: string, claims: Record<string, unknown> = {}, issuedAt = nowS() - 10): Promise<string> {
  return new SignJWT({ subscribe: ['/**'], publish: ['/**'], ...claims }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(issuedAt).setExpirationTime('1h').sign(Buffer.from(SECRET));
}

async function start(t: { after(fn: () => unknown): void }) {
  return startHerald(t, { jwtSecret: SECRET, publishKey: KEY, timeoutMs: 5_000 });
}

/** A raw long-polling session, subscribed, with its connect held; `reply` resolves with the held connect's answer. */
async function heldSession(port: number, channel: string, jwt?: string): Promise<{ peer: RawBayeux; reply: Promise<any> }> {
  const peer = new RawBayeux(port);
  const handshake = await peer.handshake({ ext: { auth: { token: jwt ?? (await token('anyone')) } } });
  assert.equal(handshake.successful, true, JSON.stringify(handshake));
  await peer.connect({ advice: { timeout: 0 } });
  assert.equal((await peer.subscribe(channel)).successful, true);
  const reply = peer.connect().then((res) => res.json()[0]);
  return { peer, reply };
}

describe('disconnect', () => {
  test('over HTTP by session (its public id, from presence): the held connect is told to handshake again, naming the reason', async (t) => {
    const { port, herald } = await start(t);
    const kept = await heldSession(port, '/room/a');
    const kicked = await heldSession(port, '/room/b');
    await waitFor('both connects held', () => herald.stats().heldConnects === 2);
    const presence = (await httpRequest(port, { path: '/presence/room/b', headers: ADMIN })).json();
    const answer = await postJson(port, '/admin/disconnect', { session: presence.members[0].sessions[0].id, reason: 'permissions changed' }, ADMIN);
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.json(), { ok: true, closedHere: 1 });
    const reply = await kicked.reply;
    assert.equal(reply.successful, false);
    assert.equal(reply.error, '402:kicked,permissions changed:session_closed');
    assert.equal(reply.advice.reconnect, 'handshake');
    assert.equal(herald.sessionCount, 1, 'the other session stays');
    assert.equal((await kicked.peer.handshake()).successful, true, 'a kicked client may come back');
    await kept.peer.send([{ channel: '/meta/disconnect', clientId: kept.peer.clientId }]);
  });

  test('over HTTP by user, banned: every session of the sub and its REST stream are told not to come back, others stay', async (t) => {
    const { port, herald } = await start(t);
    const jwt = await token('mallory');
    const bayeux = await heldSession(port, '/chat/1', jwt);
    const other = await heldSession(port, '/chat/1', await token('alice'));
    const stream = await openStream(port, `/sub/chat/1?token=${jwt}`, { Accept: 'text/event-stream' }, t);
    await waitFor('three sessions', () => herald.sessionCount === 3);
    const ended = once(stream.res, 'end');
    const answer = await postJson(port, '/admin/disconnect', { user: 'mallory', reason: 'spam', reconnect: false }, ADMIN);
    assert.deepEqual(answer.json(), { ok: true, closedHere: 2 });
    const reply = await bayeux.reply;
    assert.equal(reply.error, '403:banned,spam:session_closed');
    assert.deepEqual(reply.advice, { reconnect: 'none' });
    await ended;
    assert.match(stream.text(), /event: close\ndata: \{"reason":"banned","note":"spam"\}/);
    // A connect that was not held when the ban came (between two polls) hears it too, not "unknown session".
    const late = (await bayeux.peer.connect()).json()[0];
    assert.equal(late.error, '403:banned,spam:session_closed');
    assert.equal(late.advice.reconnect, 'none');
    assert.equal(herald.sessionCount, 1);
    await other.peer.send([{ channel: '/meta/disconnect', clientId: other.peer.clientId }]);
  });

  test('over HTTP by channel pattern: the subscribers of channels inside it, not those of others', async (t) => {
    const { port, herald } = await start(t);
    const inside = await heldSession(port, '/game/7/moves');
    const wildcard = await heldSession(port, '/game/7/*');
    const outside = await heldSession(port, '/game/8/moves');
    await waitFor('three held', () => herald.stats().heldConnects === 3);
    const answer = await postJson(port, '/admin/disconnect', { channel: '/game/7/**' }, ADMIN);
    assert.deepEqual(answer.json(), { ok: true, closedHere: 2 });
    assert.equal((await inside.reply).error, '402:kicked:session_closed');
    assert.equal((await wildcard.reply).error, '402:kicked:session_closed');
    assert.equal(herald.sessionCount, 1);
    await outside.peer.send([{ channel: '/meta/disconnect', clientId: outside.peer.clientId }]);
  });

  test('from code: herald.disconnect(); a bad request throws HERALD_ERR_INVALID_REQUEST naming the problem', async (t) => {
    const { port, herald } = await start(t);
    const session = await heldSession(port, '/x', await token('bob'));
    assert.deepEqual(await herald.disconnect({ user: 'bob', reconnect: false }), { closedHere: 1 });
    assert.deepEqual((await session.reply).advice, { reconnect: 'none' });
    assert.deepEqual(await herald.disconnect({ user: 'nobody' }), { closedHere: 0 });
    await assert.rejects(herald.disconnect({}), { code: 'HERALD_ERR_INVALID_REQUEST', message: /exactly one of session, user, channel/ });
    await assert.rejects(herald.disconnect({ user: 'a', channel: '/b' }), { code: 'HERALD_ERR_INVALID_REQUEST', message: /got user, channel/ });
    await assert.rejects(herald.disconnect({ channel: 'nope' }), { code: 'HERALD_ERR_INVALID_REQUEST', message: /not a channel or pattern/ });
    await assert.rejects(herald.disconnect({ user: 'a', reason: 'line\nbreak' }), { code: 'HERALD_ERR_INVALID_REQUEST', message: /control characters/ });
  });

  test('from the CLI: herald kick --user … --ban; exit 1 with the server\'s words when it refuses', async (t) => {
    const { url, port, herald } = await start(t);
    const session = await heldSession(port, '/x', await token('carol'));
    const done = await cli(['kick', '--user', 'carol', '--reason', 'abuse', '--ban', '--url', url]);
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual(JSON.parse(done.stdout), { ok: true, closedHere: 1 });
    assert.equal((await session.reply).error, '403:banned,abuse:session_closed');
    const refused = await cli(['kick', '--channel', 'not-a-channel', '--url', url]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /HTTP 400.*not a channel or pattern/);
    assert.equal(herald.sessionCount, 0);
  });
});

describe('revoke', () => {
  test('over HTTP by jti: the live session ends (token_revoked, advice none), the token is refused at handshake and REST, others work', async (t) => {
    const { port, herald } = await start(t);
    const leaked = await token('dave', { jti: 'leaked-1' });
    const session = await heldSession(port, '/feed', leaked);
    const stream = await openStream(port, `/sub/feed?transport=stream&token=${leaked}`, {}, t);
    await waitFor('two sessions', () => herald.sessionCount === 2);
    const ended = once(stream.res, 'end');
    const answer = await postJson(port, '/admin/revoke', { jti: 'leaked-1', until: nowS() + 3600 }, ADMIN);
    assert.deepEqual(answer.json(), { ok: true, closedHere: 2 });
    const reply = await session.reply;
    assert.equal(reply.error, '403:token_revoked:session_closed');
    assert.deepEqual(reply.advice, { reconnect: 'none' });
    await ended;
    assert.match(stream.text(), /\{"closed":true,"reason":"token_revoked"\}/);

    const again = await new RawBayeux(port).handshake({ ext: { auth: { token: leaked } } });
    assert.equal(again.error, '403:token_revoked:handshake_denied');
    assert.equal(again.advice.reconnect, 'none');
    const publish = await httpRequest(port, { method: 'POST', path: '/pub/feed', headers: { Authorization: `Bearer ${leaked}`, 'Content-Type': 'application/json' }, body: '1' });
    assert.equal(publish.status, 403);
    assert.deepEqual(publish.json(), { error: 'token revoked' });
    assert.equal((await httpRequest(port, { path: `/sub/feed?token=${leaked}` })).status, 403);
    // Another token of the same subject is untouched.
    assert.equal((await new RawBayeux(port).handshake({ ext: { auth: { token: await token('dave', { jti: 'other' }) } } })).successful, true);
  });

  test('by sub: tokens issued before the revocation are refused, a token issued after it is accepted; a connect refreshing with a revoked one ends its session', async (t) => {
    const { port, herald } = await start(t);
    const old = await token('erin');
    const fresh = await token('erin', {}, nowS() + 2);
    const session = await heldSession(port, '/feed', fresh);
    await herald.revoke({ sub: 'erin', until: new Date(Date.now() + 3600_000) });
    assert.equal((await new RawBayeux(port).handshake({ ext: { auth: { token: old } } })).error, '403:token_revoked:handshake_denied');
    assert.equal(herald.sessionCount, 1, 'the session with the newer token stays');
    const refreshed = await session.peer.connect({ ext: { auth: { token: old } } });
    const [reply] = refreshed.json();
    assert.equal(reply.error, '403:token_revoked:token_refused');
    assert.equal(herald.sessionCount, 0);
    const subscribe = (await new RawBayeux(port).handshake({ ext: { auth: { token: fresh } } })).successful;
    assert.equal(subscribe, true, 'issued after the revocation');
  });

  test('a subscribe carrying a revoked token is refused', async (t) => {
    const { port, herald } = await start(t);
    const grant = await token('frank', { jti: 'sub-token' });
    await herald.revoke({ jti: 'sub-token', until: nowS() + 60 });
    const peer = new RawBayeux(port);
    await peer.handshake({ ext: { auth: { token: await token('frank', { subscribe: [] }) } } });
    const res = await peer.send([{ channel: '/meta/subscribe', clientId: peer.clientId, subscription: '/x', ext: { auth: { token: grant } } }]);
    assert.equal(res.json()[0].error, '403:token_revoked:subscribe_denied');
  });

  test('from the CLI: herald revoke --sub … --until 1h', async (t) => {
    const { url, port } = await start(t);
    const jwt = await token('gina');
    const done = await cli(['revoke', '--sub', 'gina', '--until', '1h', '--url', url]);
    assert.equal(done.code, 0, done.stderr);
    assert.equal((await new RawBayeux(port).handshake({ ext: { auth: { token: jwt } } })).error, '403:token_revoked:handshake_denied');
    const usage = await cli(['revoke', '--sub', 'gina', '--until', 'tomorrow', '--url', url]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--until: expected seconds since the epoch/);
  });
});

describe('refusals: clear 4xx, never 5xx', () => {
  const cases: [string, { method?: string; path?: string; headers?: Record<string, string>; body?: string }, number, RegExp][] = [
    ['no key', { headers: {} }, 401, /missing API key/],
    ['a wrong key', { headers: { Authorization: 'Bearer wrong' } }, 403, /wrong API key/],
    ['GET', { method: 'GET', body: '' }, 405, /use POST/],
    ['not JSON', { headers: { ...ADMIN, 'Content-Type': 'text/plain' }, body: 'user=1' }, 415, /as JSON/],
    ['malformed JSON', { body: '{"user":' }, 400, /malformed JSON/],
    ['an empty body', { body: '' }, 400, /empty body/],
    ['an array', { body: '[]' }, 400, /JSON object/],
    ['an unknown field', { body: '{"user":"a","force":true}' }, 400, /"force" is not a field/],
    ['reconnect not a boolean', { body: '{"user":"a","reconnect":"no"}' }, 400, /reconnect must be true/],
    ['a huge body', { body: JSON.stringify({ user: 'a', reason: 'x'.repeat(10_000) }) }, 413, /exceeds/],
    ['an unknown path', { path: '/admin/nope' }, 404, /use \/admin\/disconnect, \/admin\/revoke, \/admin\/subscribe, \/admin\/unsubscribe, \/admin\/channels/],
    ['revoke without until', { path: '/admin/revoke', body: '{"sub":"a"}' }, 400, /until is required/],
    ['revoke with until in ms', { path: '/admin/revoke', body: JSON.stringify({ sub: 'a', until: Date.now() + 1000 }) }, 400, /looks like milliseconds/],
    ['revoke with until past', { path: '/admin/revoke', body: '{"jti":"a","until":1000}' }, 400, /in the past/],
    ['revoke with until years ahead', { path: '/admin/revoke', body: `{"jti":"a","until":${nowS() + 5 * 366 * 86400}}` }, 400, /366 days/],
    ['revoke a jti with before', { path: '/admin/revoke', body: `{"jti":"a","before":1,"until":${nowS() + 60}}` }, 400, /before goes with sub/],
    ['revoke with a bad date', { path: '/admin/revoke', body: '{"sub":"a","until":"2030-13-45"}' }, 400, /ISO 8601/],
  ];
  test('each bad request is refused naming the problem', async (t) => {
    const { port } = await start(t);
    for (const [what, request, status, message] of cases) {
      const answer = await httpRequest(port, {
        method: request.method ?? 'POST',
        path: request.path ?? '/admin/disconnect',
        headers: { 'Content-Type': 'application/json', ...(request.headers ?? ADMIN) },
        body: request.body ?? '{"user":"a"}',
      });
      assert.equal(answer.status, status, `${what}: ${answer.text}`);
      assert.match(answer.json().error, message, what);
    }
  });

  test('a token, however privileged, is not the key', async (t) => {
    const { port } = await start(t);
    const answer = await postJson(port, '/admin/disconnect', { user: 'a' }, { Authorization: `Bearer ${await token('root')}` });
    assert.equal(answer.status, 403);
    assert.match(answer.json().error, /only the publish key/);
  });
});
