/**
 * Backend decision hooks against a real HTTP backend on loopback: what Herald sends (context,
 * credentials, the hook secret), what each answer does (allow with sub/info/channels, deny with a
 * reason), and that every way of failing to answer — a timeout, 500, bad JSON, a backend that is
 * down, a huge body, wrong types, too many calls at once — fails closed with a clear error and
 * never a 5xx. Caching within the TTL the backend sets, and /metrics.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createHerald } from '../../src/server/create-herald.js';
import { createLogger } from '../../src/server/logger.js';
import { deadUrl, startHookBackend } from '../helpers/hook-backend.js';
import type { HookAnswer, HookBackend } from '../helpers/hook-backend.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, postJson } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { RawWs } from '../helpers/raw-ws.js';
import { waitFor } from '../helpers/wait.js';

type Hookable = { after(fn: () => unknown): void };

const SECRET = 'hook-secret-for-the-tests';
const RULES = { channels: [{ pattern: '/orders/**', subscribe: 'hook', publish: 'hook' }] } as const;

async function withHooks(t: Hookable, backend: HookBackend, options: Record<string, unknown> = {}) {
  return startHerald(t, {
    connectHook: `${backend.url}/connect`,
    subscribeHook: `${backend.url}/subscribe`,
    publishHook: `${backend.url}/publish`,
    hookSecret: SECRET,
    permissions: RULES,
    // Loopback without a publish key is the backend, which is never asked about.
    publishKey: 'the-backends-publish-key',
    ...options,
  });
}

function handshake(port: number, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return postJson(port, '/bayeux', [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: '1', ...extra }], headers);
}

describe('the connect hook', () => {
  test('is sent the context and the secret; its sub, info and channels shape the session', async (t) => {
    const backend = await startHookBackend(t, () => ({ json: { allow: true, sub: 'user-42', info: { name: 'Ada' }, channels: ['/user/42/notes'] } }));
    const { port, herald } = await withHooks(t, backend);
    herald.service('/service/who', ({ subject, claims }) => ({ subject, info: claims?.info }));
    const res = await handshake(port, { ext: { auth: { session: 'app-session-1' } } }, { Authorization: 'Basic YXBwOnNlY3JldA==' });
    const [reply] = res.json();
    assert.equal(reply.successful, true, JSON.stringify(reply));
    assert.deepEqual(reply.ext.herald.channels, ['/user/42/notes']);
    const [call] = backend.calls;
    assert.equal(call!.path, '/connect');
    assert.equal(call!.headers.authorization, `Bearer ${SECRET}`);
    assert.equal(call!.headers['content-type'], 'application/json');
    assert.deepEqual(call!.body.credentials, { auth: { session: 'app-session-1' }, authorization: 'Basic YXBwOnNlY3JldA==' });
    assert.equal(call!.body.hook, 'connect');
    assert.equal(call!.body.transport, 'long-polling');
    assert.equal(call!.body.address, '127.0.0.1');
    // The user is known by the hook's sub: inspection (and kicks) find the session by it.
    const { sessions } = await herald.userSessions('user-42');
    assert.equal(sessions.length, 1);
    // Service handlers see the subject and the info.
    const client = new RawBayeux(port);
    client.clientId = reply.clientId;
    const answered = await client.publish('/service/who', {});
    assert.deepEqual(answered.find((m: any) => m.data !== undefined)?.data, { subject: 'user-42', info: { name: 'Ada' } });
    // The channel the hook listed is joined as a server subscription: its notice (with the grant
    // that resumes it after a reconnect) comes first, then a message on it.
    await herald.publish('/user/42/notes', { note: 1 });
    const delivered = (await client.connect()).json();
    const notice = delivered.findIndex((m: any) => m.channel === '/meta/subscribe' && m.subscription === '/user/42/notes' && m.ext?.herald?.server === true);
    assert.ok(notice >= 0 && typeof delivered[notice].ext.herald.grant === 'string', JSON.stringify(delivered));
    assert.ok(delivered.findIndex((m: any) => m.channel === '/user/42/notes' && m.data.note === 1) > notice, JSON.stringify(delivered));
  });

  test('a denial reaches the client with its reason, and advice not to come back', async (t) => {
    const backend = await startHookBackend(t, () => ({ json: { allow: false, reason: 'account suspended: see support' } }));
    const { port } = await withHooks(t, backend);
    const [reply] = (await handshake(port)).json();
    assert.equal(reply.successful, false);
    assert.equal(reply.error, '403:account suspended see support:hook_denied');
    assert.deepEqual(reply.advice, { reconnect: 'none' });
  });

  test('a credential that is not a Herald token goes to the hook rather than being refused as a forged token', async (t) => {
    const backend = await startHookBackend(t, (call) => ({ json: { allow: call.body.credentials.auth?.token === 'opaque-app-token' } }));
    const { port } = await withHooks(t, backend, { jwtSecret: 'a-test-secret-of-at-least-32-characters!' });
    const [reply] = (await handshake(port, { ext: { auth: { token: 'opaque-app-token' } } })).json();
    assert.equal(reply.successful, true, JSON.stringify(reply));
  });

  test("cookies go to the hook only on a request no other site can make", async (t) => {
    const backend = await startHookBackend(t);
    const { port } = await withHooks(t, backend);
    await handshake(port, {}, { Cookie: 'app_session=s3cr3t' });
    assert.equal(backend.calls[0]!.body.credentials.cookie, undefined, 'a cookie with no Origin is ambient: any site could send it');
    await handshake(port, {}, { Cookie: 'app_session=s3cr3t', Origin: 'http://localhost:3000' });
    assert.equal(backend.calls[1]!.body.credentials.cookie, 'app_session=s3cr3t');
  });
  test('over a WebSocket, every message is judged with the upgrade\'s Authorization and cookies, which the socket keeps for its hooks', async (t) => {
    const backend = await startHookBackend(t);
    const { port } = await withHooks(t, backend);
    const open = async (headers: Record<string, string>) => {
      const ws = await RawWs.open(port, '/bayeux', headers);
      t.after(() => ws.close());
      ws.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h' }]);
      const { clientId } = await ws.next('the handshake reply', (m) => m.id === 'h');
      // A later message on the socket: the hook is asked long after the upgrade request is gone.
      ws.send([{ channel: '/meta/subscribe', clientId, subscription: '/orders/1', id: 's' }]);
      assert.equal((await ws.next('the subscribe reply', (m) => m.id === 's')).successful, true);
      return backend.calls.splice(0).map((call) => [call.path, call.body.transport, call.body.credentials]);
    };
    const credentials = { authorization: 'Basic YXBwOnNlY3JldA==', cookie: 'app_session=s3cr3t' };
    assert.deepEqual(await open({ Authorization: credentials.authorization, Cookie: credentials.cookie, Origin: 'http://localhost:3000' }), [
      ['/connect', 'websocket', credentials],
      ['/subscribe', 'websocket', credentials],
    ]);
    // No Origin: the cookie is ambient, over a WebSocket as over HTTP.
    assert.deepEqual(await open({ Cookie: credentials.cookie }), [
      ['/connect', 'websocket', {}],
      ['/subscribe', 'websocket', {}],
    ]);
  });
});

describe('a hook that cannot decide fails closed', () => {
  const cases: [string, HookAnswer | 'down', RegExp][] = [
    ['times out', { hang: true }, /did not answer within 200 ms/],
    ['answers 500', { status: 500, json: { allow: true } }, /answered HTTP 500/],
    ['answers bad JSON', { raw: '{"allow": tru' }, /is not JSON/],
    ['is down', 'down', /could not be reached \(ECONNREFUSED\)/],
    ['answers a huge body', { raw: JSON.stringify({ allow: true, info: 'x'.repeat(200_000) }) }, /larger than 65536 bytes/],
    ['answers allow of the wrong type', { json: { allow: 'yes' } }, /"allow" must be true or false/],
    ['answers an array', { json: [true] }, /not a JSON object/],
    ['answers channels of the wrong type', { json: { allow: true, channels: '/a' } }, /"channels" must be an array/],
    ['answers a /meta channel to join', { json: { allow: true, channels: ['/meta/connect'] } }, /"channels" must be/],
    ['answers sub of the wrong type', { json: { allow: true, sub: 42 } }, /"sub" must be a string/],
    ['answers cacheSeconds of the wrong type', { json: { allow: true, cacheSeconds: 'forever' } }, /"cacheSeconds" must be a number/],
    ['answers a reason of the wrong type', { json: { allow: false, reason: { why: 1 } } }, /"reason" must be a string/],
  ];
  for (const [what, answer, message] of cases) {
    test(`when the backend ${what}: 503 hook_unavailable with advice to retry, and Herald serves on`, async (t) => {
      const backend = await startHookBackend(t, () => (answer === 'down' ? { json: {} } : answer));
      const connectHook = answer === 'down' ? await deadUrl() : `${backend.url}/connect`;
      const { port } = await withHooks(t, backend, { connectHook, hookTimeoutMs: 200 });
      const res = await handshake(port);
      assert.equal(res.status, 200);
      const [reply] = res.json();
      assert.equal(reply.successful, false);
      assert.match(reply.error, /^503:.*:hook_unavailable$/);
      assert.match(reply.error, message);
      assert.deepEqual(reply.advice, { reconnect: 'handshake', interval: 1000 });
      backend.release({ json: { allow: true } });
      // Nothing broke: the next request is served.
      assert.equal((await httpRequest(port, { path: '/health' })).status, 200);
    });
  }

  test('hostile clients: credentials nested too deeply, data too large — refused clearly, the backend never asked', async (t) => {
    const backend = await startHookBackend(t);
    const { port } = await withHooks(t, backend, { maxMessageBytes: 1024 });
    const deep = '['.repeat(50_000) + ']'.repeat(50_000);
    const body = `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"auth":${deep}}}]`;
    const [reply] = (await postJson(port, '/bayeux', body)).json();
    assert.equal(reply.successful, false);
    assert.match(reply.error, /^403:what the client sent cannot be passed to the connect hook \(nested too deeply\):hook_denied$/);
    const big = await postJson(port, '/pub/orders/1', { text: 'x'.repeat(2000) });
    assert.equal(big.status, 413);
    assert.equal(backend.calls.length, 0);
    assert.equal((await httpRequest(port, { path: '/health' })).status, 200);
  });

  test('any JSON a backend answers: allowed, or refused naming the hook (403, 503) — nothing else', async (t) => {
    let next: unknown = null;
    const backend = await startHookBackend(t, () => ({ json: next }));
    const { port } = await withHooks(t, backend);
    const answers = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.record({ allow: fc.oneof(fc.boolean(), fc.jsonValue({ maxDepth: 1 })), reason: fc.jsonValue({ maxDepth: 1 }), sub: fc.jsonValue({ maxDepth: 1 }), data: fc.jsonValue({ maxDepth: 2 }), cacheSeconds: fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: ['allow'] }),
    );
    await fc.assert(
      fc.asyncProperty(answers, async (answer) => {
        next = answer;
        // Fresh credentials each time: no decision comes from the cache.
        const res = await postJson(port, '/pub/orders/1', { n: 1 }, { Authorization: `App ${Math.random()}` });
        if (res.status === 200) return;
        assert.ok(res.status === 403 || res.status === 503, `${res.status} ${res.text}`);
        assert.match(res.json().error, /\(hook_(denied|unavailable)\)$/);
      }),
      { seed: 18_6, numRuns: 150 },
    );
  });

  test('a REST request gets 503 with Retry-After and a body naming the problem', async (t) => {
    const backend = await startHookBackend(t, () => ({ status: 502, json: {} }));
    const { port } = await withHooks(t, backend);
    const res = await postJson(port, '/pub/orders/1', { x: 1 });
    assert.equal(res.status, 503);
    assert.equal(res.headers['retry-after'], '1');
    assert.match(res.json().error, /the publish hook answered HTTP 502: try again in a moment \(hook_unavailable\)/);
  });
});

describe('decisions the backend marks cacheable', () => {
  test('are served from the cache within cacheSeconds, asked again after, and kept apart by credentials', async (t) => {
    const backend = await startHookBackend(t, () => ({ json: { allow: true, cacheSeconds: 0.3 } }));
    const { port } = await withHooks(t, backend);
    const poll = (who: string) => httpRequest(port, { path: '/sub/orders/1?wait=0', headers: { Authorization: `App ${who}` } });
    assert.equal((await poll('alice')).status, 200);
    const firstAt = Date.now();
    assert.equal((await poll('alice')).status, 200);
    assert.equal(backend.calls.length, 1, 'the second subscribe within the TTL is not asked');
    assert.equal((await poll('bob')).status, 200);
    assert.equal(backend.calls.length, 2, 'other credentials are asked');
    await waitFor('the cached decision to expire', async () => (await poll('alice')).status === 200 && backend.calls.length === 3, 3000);
    assert.ok(Date.now() - firstAt >= 290, 'not before the TTL');
    const metrics = (await httpRequest(port, { path: '/metrics' })).text;
    assert.match(metrics, /herald_hook_cache_hits_total\{hook="subscribe"\} [1-9]/);
    assert.match(metrics, /herald_hook_calls_total\{hook="subscribe",outcome="allow"\} 3/);
    assert.match(metrics, /herald_hook_seconds_bucket\{le="[^"]+",hook="subscribe"\} \d/);
  });

  test('a publish decision that replaces the data is never cached', async (t) => {
    const backend = await startHookBackend(t, (call) => ({ json: { allow: true, data: { clean: call.body.data.text }, cacheSeconds: 60 } }));
    const { port } = await withHooks(t, backend);
    await postJson(port, '/pub/orders/1', { text: 'one' });
    await postJson(port, '/pub/orders/1', { text: 'two' });
    assert.equal(backend.calls.length, 2);
  });
});

describe('concurrency', () => {
  test('at most --hook-concurrency calls run, as many wait, and the rest are refused at once', async (t) => {
    const backend = await startHookBackend(t, () => ({ hang: true }));
    // Clients at four addresses (one address may hold only a quarter: security/hook-fairness.test.ts).
    const { port } = await withHooks(t, backend, { hookConcurrency: 2, hookTimeoutMs: 10_000, trustedProxies: ['127.0.0.1'] });
    const from = (i: number) => ({ 'X-Forwarded-For': `192.0.2.${i}` });
    const publishes = Array.from({ length: 4 }, (_, i) => postJson(port, '/pub/orders/1', { i }, from(i)));
    await waitFor('two calls at the backend', () => backend.inFlight() === 2);
    const extra = await postJson(port, '/pub/orders/1', { i: 4 }, from(4));
    assert.equal(extra.status, 503);
    assert.match(extra.json().error, /too many publish hook calls at once \(at most 2, and 2 waiting\)/);
    // Released one by one as the backend answers: each waiting call takes a freed slot.
    backend.release({ json: { allow: true } });
    await waitFor('the waiting calls to reach the backend', () => backend.calls.length === 4 && backend.inFlight() === 2);
    backend.release({ json: { allow: true } });
    const answers = await Promise.all(publishes);
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200]);
    assert.equal(backend.peak.value, 2);
    const metrics = (await httpRequest(port, { path: '/metrics' })).text;
    assert.match(metrics, /herald_hook_calls_total\{hook="publish",outcome="busy"\} 1/);
  });
});

describe('configuration', () => {
  test('a rule that says "hook" without that hook configured is refused at start, naming it', () => {
    assert.throws(() => createHerald({ permissions: { channels: [{ pattern: '/orders/**', subscribe: 'hook' }] } }), /the rule for \/orders\/\*\* says "subscribe": "hook", but no subscribeHook \(--subscribe-hook\) is set/);
    assert.throws(() => createHerald({ subscribeHook: 'ftp://backend/hook' }), /subscribeHook must be an http:\/\/ or https:\/\/ URL/);
  });

  test('the secret and credentials in the hook URL never reach the logs', async (t) => {
    const lines: string[] = [];
    const url = `${await deadUrl()}?token=url-token-secret`;
    const { port } = await startHerald(t, { connectHook: url, hookSecret: SECRET, logger: createLogger('debug', (line) => lines.push(line)) });
    const [reply] = (await handshake(port, { ext: { auth: { password: 'client-password' } } })).json();
    assert.match(reply.error, /hook_unavailable/);
    const log = lines.join('\n');
    assert.match(log, /hook failed/);
    for (const secret of [SECRET, 'url-token-secret', 'client-password']) assert.ok(!log.includes(secret), `${secret} leaked into the log`);
  });
});
