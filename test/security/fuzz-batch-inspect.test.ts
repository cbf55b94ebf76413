/**
 * Fuzzing batch publish (`POST /pub`, `Idempotency-Key` on `POST /pub/{channel}`) and inspection
 * (`GET /admin/channels`, `/admin/users/{sub}/sessions`, `/admin/nodes`) with fast-check: arrays
 * of items built from their fields with hostile values (wrong types, huge or odd strings, unknown
 * and prototype keys, keys reused across channels), any JSON, raw bytes; query strings and paths
 * of every shape; odd methods and content types. Whatever arrives, Herald must answer a 4xx or 200
 * — never 5xx — with every refusal and every refused item naming its problem, log no error, raise
 * no process fault, and still serve a normal round trip.
 *
 * Replay a failure with FUZZ_SEED=<seed printed in the output>; FUZZ_RUNS and FUZZ_SECONDS scale it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { fire, judgeAnswer, realSession } from '../helpers/fuzz-clients.js';
import { anyJson, hugeString, POOL } from '../helpers/fuzz-messages.js';
import { BUDGET_MS, finishCase, fuzz, RUNS, SEED, startCase, startFuzzServer, stopFuzzServer } from '../helpers/fuzz.js';

const text = fc.oneof(
  fc.constantFrom('', ' ', '__proto__', 'constructor', 'x'.repeat(300), 'ä\u2028', 'line\nbreak', '\u0000', '%', '%E0%A4%A', '..', '/', '*', '/**'),
  fc.string({ maxLength: 20 }),
);
const channel = fc.oneof({ arbitrary: fc.constantFrom(...POOL), weight: 4 }, fc.constantFrom('/fuzz/*', '/meta/connect', '/service/echo', 'nope', '', '/a//b'), text, anyJson);
const key = fc.oneof(fc.constantFrom('k1', 'k2', 'k3'), text, anyJson);
const field = (values: fc.Arbitrary<unknown>) => fc.option(values, { nil: undefined });
const item = fc.oneof(
  { arbitrary: fc.record({ channel, data: fc.oneof(anyJson, hugeString), idempotencyKey: field(key) }, { requiredKeys: ['channel', 'data'] }), weight: 6 },
  fc.record({ channel: field(channel), data: field(anyJson), idempotencyKey: field(key), extra: field(anyJson) }, { requiredKeys: [] }),
  anyJson,
);
const batchBody = fc.oneof(
  { arbitrary: fc.array(item, { maxLength: 8 }).map((items) => JSON.stringify(items)), weight: 6 },
  // Many items: past --max-batch (100) now and then.
  fc.integer({ min: 90, max: 120 }).map((n) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ channel: '/fuzz/a', data: i })))),
  anyJson.map((value) => JSON.stringify(value)),
  fc.constantFrom('', '[', '[{"__proto__":{"channel":"/fuzz/a"},"data":1}]', '[{"channel":"/fuzz/a","data":1,"constructor":{}}]', '\u0000\u0001'),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);
const publishCase = fc.record({
  kind: fc.constant('publish' as const),
  method: fc.oneof({ arbitrary: fc.constant('POST'), weight: 8 }, fc.constantFrom('GET', 'PUT', 'DELETE', 'OPTIONS')),
  path: fc.oneof({ arbitrary: fc.constant('/pub'), weight: 6 }, fc.constantFrom('/pub/fuzz/a', '/pub?x=1', '/pub/', '/pubx')),
  contentType: fc.oneof({ arbitrary: fc.constant('application/json'), weight: 8 }, fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', '')),
  idempotencyKey: fc.option(fc.oneof(fc.constantFrom('k1', 'k2'), fc.stringMatching(/^[\x21-\x7e]{0,210}$/)), { nil: undefined }),
  body: batchBody,
});
const query = fc.array(fc.tuple(fc.constantFrom('pattern', 'cursor', 'limit', 'patern', 'token', ''), fc.oneof(text, fc.constantFrom('/fuzz/**', '/**', '0', '1', '1000', '1001', '-1', '1e3', 'L2Z1enovYQ', 'bm9wZQ'))), { maxLength: 4 });
const inspectCase = fc.record({
  kind: fc.constant('inspect' as const),
  method: fc.oneof({ arbitrary: fc.constant('GET'), weight: 8 }, fc.constantFrom('POST', 'HEAD', 'DELETE')),
  path: fc.oneof(
    { arbitrary: fc.constantFrom('/admin/channels', '/admin/nodes'), weight: 4 },
    text.map((sub) => `/admin/users/${encodeURIComponent(sub)}/sessions`),
    fc.constantFrom('/admin/users/', '/admin/users/a', '/admin/users/a/sessions/x', '/admin/users/%ZZ/sessions', '/admin/channels/x', '/dashboard/channels', '/dashboard/users/a/sessions'),
  ),
  query,
  contentType: fc.constant(''),
  idempotencyKey: fc.constant(undefined),
  body: fc.constant(''),
});

/** How the cases were answered, shown at the end: a run that never gets past validation proves little. */
const outcomes = new Map<number, number>();
const ANSWERS = new Set([200, 204, 400, 401, 403, 404, 405, 409, 413, 415]);

describe('fuzz: batch publish and inspection', () => {
  before(() => startFuzzServer());
  after(() => stopFuzzServer());

  test('random batches, idempotency keys and inspections', (t) =>
    fuzz(
      t,
      fc.oneof(publishCase, inspectCase),
      async (c) => {
        const started = await startCase();
        const headers: Record<string, string> = {};
        if (c.contentType !== '') headers['content-type'] = c.contentType;
        if (c.idempotencyKey !== undefined) headers['idempotency-key'] = c.idempotencyKey;
        const search = c.kind === 'inspect' ? new URLSearchParams(c.query).toString() : '';
        const path = search === '' ? c.path : `${c.path}?${search}`;
        const what = `${c.method} ${path} ${JSON.stringify(headers)} body=${c.body.slice(0, 200)}`;
        const answer = await fire({ method: c.method, path, headers, body: c.method === 'GET' || c.method === 'HEAD' ? undefined : c.body });
        judgeAnswer(answer, what, c.method, ANSWERS, outcomes);
        // The answer is read up to its first 2 KiB (fire): a longer one is not checked item by item.
        if (c.path === '/pub' && answer.status === 200 && answer.body !== undefined && answer.body.length < 2048) {
          const { results } = JSON.parse(answer.body) as { results: { status: number; error?: string }[] };
          const unnamed = results.find((result) => result.status !== 200 && (result.status >= 500 || typeof result.error !== 'string' || result.error === ''));
          if (unnamed !== undefined) throw new Error(`an item refused without a 4xx naming why for ${what}: ${JSON.stringify(unnamed)}`);
        }
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
