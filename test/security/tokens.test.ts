/**
 * Tokens end to end: JWTs (HS256, RS256, ES256 by JWKS) over every way they reach Herald, expiry
 * and refresh, and what a token grants — over Bayeux and the REST API.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { describe, test } from 'node:test';
import { exportJWK, SignJWT } from 'jose';
import type { JWTPayload } from 'jose';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream, postJson } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { RawWs } from '../helpers/raw-ws.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const PUBLISH_KEY = 'publish-key-for-tests';

function hs256(claims: JWTPayload, { secret = SECRET, expiresIn = '1h' as string | number } = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(String(claims.sub ?? 'alice')).setExpirationTime(expiresIn).sign(Buffer.from(secret));
}

function signWith(key: KeyObject, alg: 'RS256' | 'ES256', claims: JWTPayload, kid?: string): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(kid === undefined ? { alg } : { alg, kid }).setSubject('bob').setExpirationTime('1h').sign(key);
}

/** A token whose payload was changed after signing. */
function tampered(token: string, claims: JWTPayload): string {
  const [header, , signature] = token.split('.');
  return `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
}

async function handshakeWith(port: number, ext: Record<string, unknown> | undefined, headers: Record<string, string> = {}) {
  const res = await postJson(port, '/bayeux', [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: '1', ...(ext ? { ext } : {}) }], headers);
  return res.json()[0];
}

describe('Bayeux with JWTs', () => {
  test('a token for /a/** subscribes and publishes under /a only; /b hears nothing of it and it hears nothing of /b', async (t) => {
    const { port, herald } = await startHerald(t, { jwtSecret: SECRET });
    const token = await hs256({ subscribe: ['/a/**'], publish: ['/a/chat'] });
    const client = new RawBayeux(port);
    const hello = await client.handshake({ ext: { auth: { token } } });
    assert.equal(hello.successful, true, JSON.stringify(hello));
    await client.connect({ advice: { timeout: 0 } });

    assert.equal((await client.subscribe('/a/chat')).successful, true);
    assert.equal((await client.subscribe('/a/**')).successful, true);
    const denied = await client.subscribe('/b');
    assert.equal(denied.successful, false);
    assert.equal(denied.error, '403:/b:subscribe_denied');
    assert.equal(denied.subscription, '/b');
    assert.equal((await client.subscribe(['/a/x', '/b/**'])).successful, false, 'an array is all or nothing');
    // `/**` reaches /a/** only: accepted, and each delivery is checked by its channel (pattern-access.test.ts).
    assert.equal((await client.subscribe('/**')).successful, true);

    const refused = await client.publish('/a/other', 'no');
    assert.equal(refused[0].successful, false);
    assert.equal(refused[0].error, '403:/a/other:publish_denied');
    assert.equal((await client.publish('/a/chat', 'hi'))[0].successful, true);

    // A message on /b (published by the backend) must not reach this client.
    await herald.publish('/b', 'secret');
    await herald.publish('/a/x', 'for a');
    const res = await client.connect();
    const data = res.json().filter((m: any) => m.data !== undefined).map((m: any) => m.data);
    assert.ok(!data.includes('secret'), JSON.stringify(data));
    assert.ok(data.includes('hi') || data.includes('for a'), JSON.stringify(data));
  });

  test('anonymous clients get nothing once a key is configured, and forged tokens are refused with advice none', async (t) => {
    const { port } = await startHerald(t, { jwtSecret: SECRET });
    const anonymous = new RawBayeux(port);
    await anonymous.open();
    assert.equal((await anonymous.subscribe('/a/x')).error, '403:/a/x:subscribe_denied');
    assert.equal((await anonymous.publish('/a/x', 1))[0].error, '403:/a/x:publish_denied');

    const good = await hs256({ subscribe: ['/a/**'] });
    const cases: [string, string][] = [
      [await hs256({ subscribe: ['/**'] }, { secret: 'another-secret-of-at-least-32-characters' }), 'wrong secret'],
      [tampered(good, { sub: 'alice', subscribe: ['/**'], exp: Math.floor(Date.now() / 1000) + 3600 }), 'payload changed'],
      [`${Buffer.from('{"alg":"none"}').toString('base64url')}.${good.split('.')[1]}.`, 'alg none'],
      ['not.a.token', 'garbage'],
      ['x'.repeat(10_000), 'too long'],
    ];
    for (const [token, what] of cases) {
      const reply = await handshakeWith(port, { auth: { token } });
      assert.equal(reply.successful, false, what);
      assert.equal(reply.error, '403:invalid_token:handshake_denied', what);
      assert.deepEqual(reply.advice, { reconnect: 'none' }, what);
    }
    const expired = await hs256({ subscribe: ['/**'] }, { expiresIn: Math.floor(Date.now() / 1000) - 60 });
    const late = await handshakeWith(port, { auth: { token: expired } });
    assert.equal(late.error, '403:token_expired:handshake_denied');
    assert.equal(late.advice.reconnect, 'handshake', 'an expired token may be replaced by a fresh one');
  });

  test('the token may come as Authorization: Bearer, a herald_token cookie (same-origin), or ?token= on a WebSocket', async (t) => {
    const { port } = await startHerald(t, { jwtSecret: SECRET });
    const token = await hs256({ subscribe: ['/a/**'] });
    const headerSets: Record<string, string>[] = [{ Authorization: `Bearer ${token}` }, { Cookie: `other=1; herald_token=${token}`, 'Sec-Fetch-Site': 'same-origin' }];
    for (const headers of headerSets) {
      const reply = await handshakeWith(port, undefined, headers);
      assert.equal(reply.successful, true);
      const sub = await postJson(port, '/bayeux', [{ channel: '/meta/subscribe', clientId: reply.clientId, subscription: '/a/1', id: '2' }], headers);
      assert.equal(sub.json()[0].successful, true, JSON.stringify(headers));
    }
    const ws = await RawWs.open(port, `/bayeux?token=${token}`);
    t.after(() => ws.ws.close());
    ws.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: '1' }]);
    const hello = await ws.next('handshake reply', (m) => m.channel === '/meta/handshake');
    assert.equal(hello.successful, true);
    ws.send([{ channel: '/meta/subscribe', clientId: hello.clientId, subscription: '/b', id: '2' }]);
    assert.equal((await ws.next('subscribe reply', (m) => m.channel === '/meta/subscribe')).error, '403:/b:subscribe_denied');
  });

  test('RS256 with a PEM public key and ES256 from a JWKS file; an HS256 token signed with the public key is refused', async (t) => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const { port: rsaPort } = await startHerald(t, { jwtPublicKey: pem });
    const rsToken = await signWith(rsa.privateKey, 'RS256', { subscribe: '/r/**' });
    assert.equal((await handshakeWith(rsaPort, { auth: { token: rsToken } })).successful, true);
    // Algorithm confusion: the public key used as an HMAC secret.
    const confused = await new SignJWT({ subscribe: '/**' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(pem));
    assert.equal((await handshakeWith(rsaPort, { auth: { token: confused } })).error, '403:invalid_token:handshake_denied');

    const jwk = { ...(await exportJWK(ec.publicKey)), kid: 'k1', alg: 'ES256' };
    const { port: jwksPort } = await startHerald(t, { jwks: { keys: [jwk] } });
    const esToken = await signWith(ec.privateKey, 'ES256', { subscribe: ['/e/**'] }, 'k1');
    const client = new RawBayeux(jwksPort);
    assert.equal((await client.handshake({ ext: { auth: { token: esToken } } })).successful, true);
    assert.equal((await client.subscribe('/e/1')).successful, true);
    assert.equal((await client.subscribe('/r/1')).successful, false);
    const unknownKid = await signWith(ec.privateKey, 'ES256', { subscribe: ['/e/**'] }, 'k2');
    assert.equal((await handshakeWith(jwksPort, { auth: { token: unknownKid } })).error, '403:invalid_token:handshake_denied');
    assert.equal((await handshakeWith(jwksPort, { auth: { token: rsToken } })).error, '403:invalid_token:handshake_denied', 'RS256 key not in the set');
  });

  test('issuer and audience are enforced when configured', async (t) => {
    const { port } = await startHerald(t, { jwtSecret: SECRET, jwtIssuer: 'https://app.example', jwtAudience: 'herald' });
    const sign = (claims: JWTPayload) => hs256({ subscribe: '/a/**', ...claims });
    assert.equal((await handshakeWith(port, { auth: { token: await sign({ iss: 'https://app.example', aud: 'herald' }) } })).successful, true);
    assert.equal((await handshakeWith(port, { auth: { token: await sign({ iss: 'https://evil.example', aud: 'herald' }) } })).successful, false);
    assert.equal((await handshakeWith(port, { auth: { token: await sign({ iss: 'https://app.example', aud: ['other'] }) } })).successful, false);
  });

  test('a subscription token (ext.auth.token on subscribe) grants that subscription only', async (t) => {
    const { port } = await startHerald(t, { jwtSecret: SECRET });
    const client = new RawBayeux(port);
    await client.handshake({ ext: { auth: { token: await hs256({ subscribe: ['/a/**'] }) } } });
    const sub = (subscription: string, token: string) =>
      client.send([{ channel: '/meta/subscribe', clientId: client.clientId, subscription, id: client.nextId(), ext: { auth: { token } } }]).then((r) => r.json()[0]);
    const roomToken = await hs256({ sub: 'alice', subscribe: ['/rooms/7'] });
    assert.equal((await sub('/rooms/7', roomToken)).successful, true);
    assert.equal((await sub('/rooms/8', roomToken)).error, '403:/rooms/8:subscribe_denied');
    assert.equal((await sub('/rooms/7', 'forged')).error, '403:invalid_token:subscribe_denied');
    assert.equal((await client.subscribe('/rooms/9')).successful, false);
  });

  test('a session whose token expires is closed with token_expired and handshake advice; a refresh on connect keeps it', async (t) => {
    const { port, herald } = await startHerald(t, { jwtSecret: SECRET, timeoutMs: 10_000 });
    const soon = () => Math.floor(Date.now() / 1000) + 2;
    const expiring = new RawBayeux(port);
    await expiring.handshake({ ext: { auth: { token: await hs256({ subscribe: ['/a/**'] }, { expiresIn: soon() }) } } });
    await expiring.connect({ advice: { timeout: 0 } });
    const refreshed = new RawBayeux(port);
    await refreshed.handshake({ ext: { auth: { token: await hs256({ subscribe: ['/a/**'] }, { expiresIn: soon() }) } } });
    await refreshed.connect({ advice: { timeout: 0 }, ext: { auth: { token: await hs256({ subscribe: ['/a/**'] }) } } });

    // The held connect is answered when the token runs out, naming the reason.
    const held = await expiring.connect();
    const [reply] = held.json();
    assert.equal(reply.successful, false);
    assert.equal(reply.error, '403:token_expired:session_closed');
    assert.equal(reply.advice.reconnect, 'handshake');
    assert.equal((await expiring.subscribe('/a/1')).error, '402::session_unknown');

    assert.equal((await refreshed.subscribe('/a/1')).successful, true, 'the refreshed session lives on');
    assert.equal(herald.sessionCount, 1);

    // Refreshing with another subject's token, or a forged one, ends the session.
    const [swapped] = (await refreshed.connect({ advice: { timeout: 0 }, ext: { auth: { token: await hs256({ sub: 'mallory', subscribe: ['/**'] }) } } })).json();
    assert.equal(swapped.error, '403:subject_changed:token_refused');
    assert.equal(swapped.advice.reconnect, 'none');
    await waitFor('the session to be gone', () => herald.sessionCount === 0);
  });

  test('/service handlers see the subject and claims of the sender', async (t) => {
    const { port, herald } = await startHerald(t, { jwtSecret: SECRET });
    herald.service('/service/whoami', ({ subject, claims }) => ({ subject, role: claims?.role ?? null }));
    const client = new RawBayeux(port);
    await client.handshake({ ext: { auth: { token: await hs256({ sub: 'carol', role: 'editor' }) } } });
    const replies = await client.publish('/service/whoami', {});
    assert.deepEqual(replies.find((m: any) => m.data !== undefined).data, { subject: 'carol', role: 'editor' });
    const anonymous = new RawBayeux(port);
    await anonymous.handshake();
    assert.deepEqual((await anonymous.publish('/service/whoami', {})).find((m: any) => m.data !== undefined).data, { role: null });
  });
});

describe('REST with JWTs', () => {
  test('GET /sub, /history and /presence need a token that grants the channel; /a/** does not reach /b', async (t) => {
    const { port, herald } = await startHerald(t, { jwtSecret: SECRET });
    const token = await hs256({ subscribe: ['/a/**'] });
    await herald.publish('/a/1', 'one');
    await herald.publish('/b', 'bee');
    for (const path of ['/history/a/1', '/presence/a/1', '/sub/a/1?wait=0&since=0']) {
      assert.equal((await httpRequest(port, { path, headers: { Authorization: `Bearer ${token}` } })).status, 200, path);
      assert.equal((await httpRequest(port, { path: `${path}${path.includes('?') ? '&' : '?'}token=${token}` })).status, 200, path);
      const anonymous = await httpRequest(port, { path });
      assert.equal(anonymous.status, 401, path);
      assert.equal(anonymous.headers['www-authenticate'], 'Bearer');
      const other = path.replace('/a/1', '/b');
      const denied = await httpRequest(port, { path: other, headers: { Authorization: `Bearer ${token}` } });
      assert.equal(denied.status, 403, other);
      assert.match(denied.json().error, /this token may not subscribe to \/b/);
      assert.doesNotMatch(denied.text, /bee/);
    }
    assert.equal((await httpRequest(port, { path: '/sub/a/1?wait=0', headers: { Authorization: 'Bearer forged' } })).status, 401);
    const expired = await hs256({ subscribe: ['/**'] }, { expiresIn: Math.floor(Date.now() / 1000) - 60 });
    const late = await httpRequest(port, { path: '/history/a/1', headers: { Authorization: `Bearer ${expired}` } });
    assert.equal(late.status, 401);
    assert.match(late.json().error, /token expired/);
  });

  test('a WebSocket on /sub with a token for another channel is refused before upgrading', async (t) => {
    const { default: WebSocket } = await import('ws');
    const { port } = await startHerald(t, { jwtSecret: SECRET });
    const token = await hs256({ subscribe: ['/a/**'] });
    const refused = new WebSocket(`ws://127.0.0.1:${port}/sub/b?token=${token}`);
    refused.on('error', () => {});
    const status = await new Promise<number>((resolve) => refused.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(status, 403);
    const ws = await RawWs.open(port, `/sub/a/1?token=${token}`);
    t.after(() => ws.ws.close());
  });

  test('an event stream ends with a close event naming token_expired when its token runs out', async (t) => {
    const { port, herald } = await startHerald(t, { jwtSecret: SECRET });
    const token = await hs256({ subscribe: ['/a/**'] }, { expiresIn: Math.floor(Date.now() / 1000) + 2 });
    const stream = await openStream(port, `/sub/a/1?token=${token}`, { Accept: 'text/event-stream' }, t);
    assert.equal(stream.res.statusCode, 200);
    await herald.publish('/a/1', 'before');
    await waitFor('the message', () => stream.text().includes('before'));
    await waitFor('the stream to end', () => stream.res.complete, 8000);
    assert.match(stream.text(), /event: close\ndata: \{"reason":"token_expired"\}/);
  });

  test('POST /pub with a token that grants publishing; the key still does everything; DELETE needs the key', async (t) => {
    const { port } = await startHerald(t, { jwtSecret: SECRET, publishKey: PUBLISH_KEY });
    const writer = await hs256({ publish: ['/a/**'] });
    const reader = await hs256({ subscribe: ['/a/**'] });
    const pub = (path: string, token: string, method = 'POST') => httpRequest(port, { method, path, headers: { Authorization: `Bearer ${token}` }, body: method === 'POST' ? 'x' : undefined });
    assert.equal((await pub('/pub/a/1', writer)).status, 200);
    assert.equal((await pub('/pub/b', writer)).status, 403);
    assert.equal((await pub('/pub/a/1', reader)).status, 403);
    assert.equal((await pub('/pub/b', PUBLISH_KEY)).status, 200);
    assert.equal((await pub('/pub/a/1', writer, 'DELETE')).status, 403);
    assert.equal((await pub('/pub/a/1', PUBLISH_KEY, 'DELETE')).status, 204);
    const forged = await pub('/pub/a/1', 'neither-key-nor-token');
    assert.equal(forged.status, 403);
    assert.match(forged.json().error, /wrong API key/);
  });
});

describe('POST /sign', () => {
  test('hands a backend a short-lived token bound to one channel; its URL subscribes there and nowhere else', async (t) => {
    const { port, herald } = await startHerald(t, { publishKey: PUBLISH_KEY, permissions: { channels: [{ pattern: '/**', subscribe: 'grant', publish: 'grant' }] } });
    const sign = (body: unknown, key = PUBLISH_KEY) => postJson(port, '/sign', body, { Authorization: `Bearer ${key}` });
    const signed = await sign({ channel: '/orders/42', ttl: 60 });
    assert.equal(signed.status, 200, signed.text);
    const { token, url, expiresAt, channel } = signed.json();
    assert.equal(channel, '/orders/42');
    assert.ok(expiresAt > Date.now() + 50_000 && expiresAt <= Date.now() + 61_000);
    assert.equal(url, `/sub/orders/42?token=${token}`);

    assert.equal((await httpRequest(port, { path: '/sub/orders/42?wait=0' })).status, 401, 'the rules need a grant');
    await herald.publish('/orders/42', 'shipped');
    const polled = await httpRequest(port, { path: `${url}&since=0` });
    assert.equal(polled.status, 200);
    assert.equal(polled.json().at(-1).data, 'shipped');
    assert.equal((await httpRequest(port, { path: `/sub/orders/43?since=0&token=${token}` })).status, 403);
    assert.equal((await httpRequest(port, { method: 'POST', path: '/pub/orders/42', headers: { Authorization: `Bearer ${token}` }, body: 'x' })).status, 403, 'subscribe only');

    // Over Bayeux, as a subscription token.
    const client = new RawBayeux(port);
    await client.handshake();
    const sub = await client.send([{ channel: '/meta/subscribe', clientId: client.clientId, subscription: '/orders/42', id: '9', ext: { auth: { token } } }]);
    assert.equal(sub.json()[0].successful, true);

    const writer = (await sign({ channel: '/orders/42', publish: true, subject: 'backend-7' })).json().token;
    assert.equal((await httpRequest(port, { method: 'POST', path: '/pub/orders/42', headers: { Authorization: `Bearer ${writer}` }, body: 'x' })).status, 200);
  });

  test('needs the key, and names what is wrong with a request', async (t) => {
    const { port } = await startHerald(t, { publishKey: PUBLISH_KEY });
    assert.equal((await postJson(port, '/sign', { channel: '/a' })).status, 401);
    assert.equal((await postJson(port, '/sign', { channel: '/a' }, { Authorization: 'Bearer wrong-key-wrong-key' })).status, 403);
    const auth = { Authorization: `Bearer ${PUBLISH_KEY}` };
    const cases: [unknown, RegExp][] = [
      [{}, /channel must be/],
      [{ channel: '/meta/connect' }, /channel must be/],
      [{ channel: '/a', ttl: 0 }, /ttl must be/],
      [{ channel: '/a', ttl: 86_401 }, /ttl must be/],
      [{ channel: '/a', publish: 'yes' }, /publish must be/],
      [{ channel: '/a/**', publish: true }, /publish needs one channel/],
      [{ channel: '/a', subject: 7 }, /subject must be/],
      [[1], /must be a JSON object/],
    ];
    for (const [body, error] of cases) {
      const res = await postJson(port, '/sign', body, auth);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.json().error, error);
    }
    assert.equal((await httpRequest(port, { method: 'POST', path: '/sign', headers: auth, body: 'channel=/a' })).status, 415);
    assert.equal((await httpRequest(port, { method: 'GET', path: '/sign', headers: auth })).status, 405);
    // A signed token cannot sign more: /sign is for the key alone.
    const token = (await postJson(port, '/sign', { channel: '/a', publish: true }, auth)).json().token;
    assert.equal((await postJson(port, '/sign', { channel: '/b' }, { Authorization: `Bearer ${token}` })).status, 403);
  });

  test('nodes sharing a publish key accept each other\u2019s signed tokens', async (t) => {
    const one = await startHerald(t, { publishKey: PUBLISH_KEY });
    const two = await startHerald(t, { publishKey: PUBLISH_KEY, permissions: { channels: [{ pattern: '/**', subscribe: 'grant' }] } });
    const { url } = (await postJson(one.port, '/sign', { channel: '/x' }, { Authorization: `Bearer ${PUBLISH_KEY}` })).json();
    assert.equal((await httpRequest(two.port, { path: `${url}&wait=0` })).status, 200);
  });
});

describe('channel permissions', () => {
  test('clientPublish false: clients may not publish, backends may', async (t) => {
    const { port } = await startHerald(t, { jwtSecret: SECRET, publishKey: PUBLISH_KEY, permissions: { clientPublish: false, channels: [{ pattern: '/news/**', subscribe: 'anyone' }] } });
    const client = new RawBayeux(port);
    await client.open();
    assert.equal((await client.subscribe('/news/today')).successful, true, 'anonymous readers allowed by rule');
    assert.equal((await client.publish('/news/today', 'x'))[0].error, '403:/news/today:publish_denied');
    const writer = await hs256({ publish: ['/**'] });
    assert.equal((await httpRequest(port, { method: 'POST', path: '/pub/news/today', headers: { Authorization: `Bearer ${writer}` }, body: 'x' })).status, 403);
    assert.equal((await httpRequest(port, { method: 'POST', path: '/pub/news/today', headers: { Authorization: `Bearer ${PUBLISH_KEY}` }, body: 'x' })).status, 200);
    const sessionless = await postJson(port, '/bayeux', [{ channel: '/news/today', data: 'x' }]);
    assert.equal(sessionless.json()[0].error, '403:/news/today:publish_denied');
  });

  test('a claim rule lets admins in and keeps users out', async (t) => {
    const { port } = await startHerald(t, { jwtSecret: SECRET, permissions: { channels: [{ pattern: '/ops/**', subscribe: { claim: 'role', equals: 'admin' } }] } });
    const admin = await hs256({ role: 'admin' });
    const user = await hs256({ role: 'user' });
    assert.equal((await httpRequest(port, { path: '/history/ops/log', headers: { Authorization: `Bearer ${admin}` } })).status, 200);
    assert.equal((await httpRequest(port, { path: '/history/ops/log', headers: { Authorization: `Bearer ${user}` } })).status, 403);
  });
});
