/**
 * Fuzzing the control plane's endpoints (`POST /admin/disconnect`, `POST /admin/revoke`) with
 * fast-check: bodies built from their fields with hostile values (wrong types, huge or odd
 * strings, times in every unit and shape, unknown and prototype keys), any JSON, raw bytes; odd
 * methods, content types and forwarded addresses. Whatever arrives, Herald must answer a 4xx or
 * 200 — never 5xx — log no error, raise no process fault, and still serve a normal round trip.
 *
 * Replay a failure with FUZZ_SEED=<seed printed in the output>; FUZZ_RUNS and FUZZ_SECONDS scale it.
 * The other routes: fuzz-http.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { fire, judgeAnswer, realSession } from '../helpers/fuzz-clients.js';
import { anyJson, hugeString } from '../helpers/fuzz-messages.js';
import { BUDGET_MS, finishCase, fuzz, RUNS, SEED, startCase, startFuzzServer, stopFuzzServer } from '../helpers/fuzz.js';

const name = fc.oneof(
  fc.constantFrom('42', 'a:b', '*', '/fuzz/**', '/fuzz/a', '', ' ', '__proto__', 'constructor', 'x'.repeat(300), 'ä\u2028', 'line\nbreak', '\u0000'),
  fc.string({ maxLength: 20 }),
);
const time = fc.oneof(
  fc.constantFrom(0, -1, 1e11, 1e12, Number.MAX_SAFE_INTEGER, 1.5, 'tomorrow', '2030-01-01T00:00:00Z', '2030-13-45', '1970-01-01', '', null, true, [], {}),
  // Seconds around now: past, soon, far.
  fc.integer({ min: -400 * 86_400, max: 400 * 86_400 }).map((offset) => Math.floor(Date.now() / 1000) + offset),
);
const field = (values: fc.Arbitrary<unknown>) => fc.option(values, { nil: undefined });
const reconnect = field(fc.constantFrom(true, false, 'false', 0, null));
const disconnectBody = fc.oneof(
  fc.record({ session: field(name), user: field(name), channel: field(name), reason: field(fc.oneof(name, hugeString)), reconnect }, { requiredKeys: [] }),
  // Well formed, mostly: exactly one target, so the request gets as far as acting.
  fc.tuple(fc.constantFrom('session', 'user', 'channel'), name, field(name), reconnect).map(([key, value, reason, again]) => ({ [key]: value, reason, reconnect: again })),
);
const soon = fc.integer({ min: 1, max: 86_400 }).map((offset) => Math.floor(Date.now() / 1000) + offset);
const revokeBody = fc.oneof(
  fc.record({ jti: field(name), sub: field(name), before: field(time), until: field(time) }, { requiredKeys: [] }),
  fc.tuple(fc.constantFrom('jti', 'sub'), name, field(time), fc.oneof(soon, time)).map(([key, value, before, until]) => ({ [key]: value, before, until })),
);
const body = fc.oneof(
  { arbitrary: fc.oneof(disconnectBody, revokeBody).map((value) => JSON.stringify(value)), weight: 6 },
  // Extra keys, including ones that name the prototype.
  { arbitrary: fc.tuple(fc.oneof(disconnectBody, revokeBody), fc.constantFrom('__proto__', 'constructor', 'force', ''), anyJson).map(([value, key, extra]) => JSON.stringify(value).replace(/^\{/, `{${JSON.stringify(key)}:${JSON.stringify(extra)},`).replace(/,}$/, '}')), weight: 2 },
  anyJson.map((value) => JSON.stringify(value)),
  fc.constantFrom('', '{', 'null', '[]', '"x"', '{"user":"a"'.repeat(500), '\u0000\u0001'),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);
const controlCase = fc.record({
  // Mostly what a backend sends, so that many cases get as far as acting.
  method: fc.oneof({ arbitrary: fc.constant('POST'), weight: 8 }, fc.constantFrom('GET', 'PUT', 'DELETE', 'OPTIONS')),
  path: fc.oneof(
    { arbitrary: fc.constantFrom('/admin/disconnect', '/admin/revoke'), weight: 8 },
    fc.constantFrom('/admin/', '/admin/disconnect/x', '/admin/%2e%2e/pub/x', '/admin/revoke?x=1'),
  ),
  contentType: fc.oneof({ arbitrary: fc.constant('application/json'), weight: 8 }, fc.constantFrom('application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', '')),
  forwarded: fc.oneof({ arbitrary: fc.constant(undefined), weight: 8 }, fc.constantFrom('1.2.3.4', '127.0.0.1', 'garbage')),
  authorization: fc.oneof({ arbitrary: fc.constant(undefined), weight: 8 }, fc.constantFrom('Bearer x', 'Basic eDp4')),
  body,
});

/** How the cases were answered, shown at the end: a run that never gets past validation proves little. */
const outcomes = new Map<number, number>();
const ANSWERS = new Set([200, 204, 400, 401, 403, 404, 405, 413, 415]);

describe('fuzz: the control plane endpoints', () => {
  before(() => startFuzzServer());
  after(() => stopFuzzServer());

  test('random requests to /admin/disconnect and /admin/revoke', (t) =>
    fuzz(
      t,
      controlCase,
      async (c) => {
        const started = await startCase();
        const headers: Record<string, string> = {};
        if (c.contentType !== '') headers['content-type'] = c.contentType;
        if (c.forwarded !== undefined) headers['x-forwarded-for'] = c.forwarded;
        if (c.authorization !== undefined) headers.authorization = c.authorization;
        const what = `${c.method} ${c.path} ${JSON.stringify(headers)} body=${c.body.slice(0, 200)}`;
        const answer = await fire({ method: c.method, path: c.path, headers, body: c.method === 'GET' ? undefined : c.body });
        judgeAnswer(answer, what, c.method, ANSWERS, outcomes);
        await finishCase(started, what);
      },
      { seed: SEED, runs: Math.min(RUNS, 600), budgetMs: Math.min(BUDGET_MS, 6_000) },
    ));

  test('afterwards: a normal handshake still works', async (t) => {
    t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
    assert.ok((outcomes.get(200) ?? 0) > 0, 'some requests were acted on');
    const { clientId } = await realSession();
    assert.ok(clientId.length > 0);
  });
});
