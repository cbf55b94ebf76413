/**
 * Fuzzing server subscriptions with fast-check: `POST /admin/subscribe|unsubscribe` with bodies
 * built from their fields and hostile values (wrong types, huge or odd strings, meta and service
 * channels, bad patterns, unknown and prototype keys), any JSON, raw bytes, odd methods and content
 * types, aimed at live sessions (their public ids) as often as not; and `/meta/subscribe` carrying
 * hostile grants — random text, real grants cut, flipped or spliced onto another channel. Herald
 * must answer a 4xx or 200 — never 5xx — name every refusal, grant nothing a grant does not say,
 * log no error, raise no process fault, and still serve a normal round trip.
 *
 * Replay a failure with FUZZ_SEED=<seed printed in the output>; FUZZ_RUNS and FUZZ_SECONDS scale it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { publicIdOf } from '../../src/core/ids.js';
import { fire, judgeAnswer, realSession } from '../helpers/fuzz-clients.js';
import { anyJson, hugeString } from '../helpers/fuzz-messages.js';
import { BUDGET_MS, finishCase, fuzz, RUNS, SEED, startCase, startFuzzServer, stopFuzzServer, target } from '../helpers/fuzz.js';
import { postJson } from '../helpers/http.js';

const GRANTED = '/fuzz/granted';
/** Public ids of live sessions, filled in before the cases run (the control plane names sessions by them). */
const live: string[] = [];
let realGrant = '';

const channel = fc.oneof(
  fc.constantFrom('/fuzz/a', '/fuzz/**', '/fuzz/*', GRANTED, '/meta/connect', '/meta/**', '/service/echo', '/**', '/a/**/b', '', '/', 'fuzz', '/fuzz/a/', `/${'x'.repeat(2000)}`, '/ä\u2028', '/line\nbreak'),
  fc.string({ maxLength: 20 }),
);
const name = fc.oneof(
  fc.constantFrom('42', '', ' ', '__proto__', 'constructor', 'x'.repeat(300), '\u0000'),
  fc.string({ maxLength: 20 }),
  fc.constant('$live').map(() => live[0] ?? 'none'),
);
const field = (values: fc.Arbitrary<unknown>) => fc.option(values, { nil: undefined });
const commandBody = fc.oneof(
  fc.record({ session: field(fc.oneof(name, fc.integer())), user: field(name), channel: field(fc.oneof(channel, anyJson)), extra: field(anyJson) }, { requiredKeys: [] }),
  // Well formed, mostly: one target and a channel, so the request gets as far as acting.
  fc.tuple(fc.constantFrom('session', 'user'), name, channel).map(([key, value, to]) => ({ [key]: value, channel: to })),
);
const body = fc.oneof(
  { arbitrary: commandBody.map((value) => JSON.stringify(value)), weight: 6 },
  { arbitrary: fc.tuple(commandBody, fc.constantFrom('__proto__', 'constructor', 'reason', '')).map(([value, key]) => JSON.stringify(value).replace(/^\{/, `{${JSON.stringify(key)}:1,`).replace(/,}$/, '}')), weight: 2 },
  anyJson.map((value) => JSON.stringify(value)),
  hugeString.map((text) => JSON.stringify({ user: '42', channel: `/${text}` })),
  fc.constantFrom('', '{', 'null', '[]', '"x"', '\u0000\u0001'),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);
const commandCase = fc.record({
  method: fc.oneof({ arbitrary: fc.constant('POST'), weight: 8 }, fc.constantFrom('GET', 'PUT', 'OPTIONS')),
  path: fc.oneof({ arbitrary: fc.constantFrom('/admin/subscribe', '/admin/unsubscribe'), weight: 8 }, fc.constantFrom('/admin/subscribe/x', '/admin/subscriptions', '/admin/unsubscribe?x=1')),
  contentType: fc.oneof({ arbitrary: fc.constant('application/json'), weight: 8 }, fc.constantFrom('text/plain', '')),
  body,
});

/** A grant mangled: cut, a byte flipped, its claims spliced with another signature, or anything. */
const grant = fc.oneof(
  fc.nat({ max: 200 }).map((n) => realGrant.slice(0, n)),
  fc.nat({ max: 200 }).map((n) => realGrant.slice(0, n) + String.fromCharCode(realGrant.charCodeAt(n) ^ 1) + realGrant.slice(n + 1)),
  fc.string({ maxLength: 40 }).map((claims) => `${Buffer.from(claims).toString('base64url')}.${realGrant.split('.')[1]}`),
  fc.constantFrom('', '.', '..', 'a.b.c'),
  fc.constant('doubled dot').map(() => realGrant.replace('.', '..')),
  anyJson,
);

const outcomes = new Map<number, number>();
const ANSWERS = new Set([200, 204, 400, 401, 403, 404, 405, 413, 415]);

describe('fuzz: server subscriptions', () => {
  before(async () => {
    await startFuzzServer();
    for (let i = 0; i < 3; i++) live.push(publicIdOf((await realSession()).clientId));
  });
  after(() => stopFuzzServer());

  test('random requests to /admin/subscribe and /admin/unsubscribe', (t) =>
    fuzz(
      t,
      commandCase,
      async (c) => {
        const started = await startCase();
        const headers: Record<string, string> = c.contentType === '' ? {} : { 'content-type': c.contentType };
        const what = `${c.method} ${c.path} body=${c.body.slice(0, 200)}`;
        const answer = await fire({ method: c.method, path: c.path, headers, body: c.method === 'GET' ? undefined : c.body });
        judgeAnswer(answer, what, c.method, ANSWERS, outcomes);
        await finishCase(started, what);
      },
      { seed: SEED, runs: Math.min(RUNS, 500), budgetMs: Math.min(BUDGET_MS, 5_000) },
    ));

  test('hostile grants on /meta/subscribe let nobody in', async (t) => {
    // A real grant for GRANTED, from a session the server subscribed: the mangled ones start from it.
    const { clientId } = await realSession();
    const id = publicIdOf(clientId);
    const { herald } = target();
    await herald.serverSubscribe({ session: id, channel: GRANTED });
    const connect = await postJson(target().port, '/bayeux', [{ channel: '/meta/connect', clientId, connectionType: 'long-polling', advice: { timeout: 0 } }]);
    realGrant = connect.json().find((message: any) => message.channel === '/meta/subscribe').ext.herald.grant;
    const { clientId: stranger } = await realSession();
    // Without a token everyone may subscribe anywhere: what a grant must not do is break anything.
    await fuzz(
      t,
      fc.tuple(grant, channel),
      async ([mangled, subscription]) => {
        const started = await startCase();
        const what = `grant=${JSON.stringify(mangled).slice(0, 200)} on ${JSON.stringify(subscription).slice(0, 100)}`;
        const answer = await fire({ method: 'POST', path: '/bayeux', headers: { 'content-type': 'application/json' }, body: JSON.stringify([{ channel: '/meta/subscribe', clientId: stranger, subscription, ext: { herald: { grant: mangled } } }]) });
        if (answer.status !== 200) throw new Error(`HTTP ${answer.status || answer.error} for ${what}: ${answer.body}`);
        const [reply] = JSON.parse(answer.body!);
        if (reply.successful !== true && !/^\d{3}:/.test(reply.error)) throw new Error(`a refusal that names nothing for ${what}: ${answer.body}`);
        // The real grant itself (cut at its full length) is the one thing that may be taken.
        if (reply.ext?.herald?.grant !== undefined && mangled !== realGrant) throw new Error(`a mangled grant was taken for ${what}: ${answer.body}`);
        await finishCase(started, what);
      },
      { seed: SEED, runs: Math.min(RUNS, 300), budgetMs: Math.min(BUDGET_MS, 3_000) },
    );
  });

  test('afterwards: a normal handshake still works', async (t) => {
    t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
    assert.ok((outcomes.get(200) ?? 0) > 0, 'some requests were acted on');
    const { clientId } = await realSession();
    assert.ok(clientId.length > 0);
  });
});
