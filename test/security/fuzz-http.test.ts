/**
 * Fuzzing a running Herald with HTTP requests (fast-check): random methods, on every route and on
 * request targets no browser sends, with odd path segments, query strings (encoded or raw),
 * headers (content type, accept, origin, cookie, upgrade, …) and bodies (Bayeux batches, JSON,
 * forms, huge, binary, deeply nested), some naming a live session. Bounded by runs and by time.
 * Whatever arrives, Herald must answer below 500, log no error, raise no unhandled rejection or
 * uncaught exception, still serve a normal round trip, and give back its sessions,
 * subscriptions, sockets and memory once the sessions have expired.
 *
 * Replay a failure with FUZZ_SEED=<seed printed in the output>; FUZZ_RUNS and FUZZ_SECONDS scale
 * the group (defaults: 1500 runs, 9 s). Bayeux messages: fuzz-bayeux.test.ts; WebSocket frames:
 * fuzz-websocket.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { fatal, fire, pct, realSession } from '../helpers/fuzz-clients.js';
import { anyJson, deepNesting, hugeString, messageId, someMessage } from '../helpers/fuzz-messages.js';
import { assertReleased, BUDGET_MS, count, finishCase, fuzz, REAL, RUNS, SEED, startCase, startFuzzServer, stopFuzzServer, warmUpBaseline } from '../helpers/fuzz.js';
import type { MemorySample } from '../helpers/fuzz.js';

const prefix = fc.oneof(
  { arbitrary: fc.constantFrom('/pub/', '/sub/', '/history/', '/presence/', `/bayeux/${REAL}`), weight: 3 },
  {
    // Other routes, and request targets no browser sends: origin-form oddities, absolute-form, asterisk-form.
    arbitrary: fc.constantFrom('/admin/disconnect', '/admin/revoke', '/admin/subscribe', '/admin/unsubscribe', '/admin/', '/admin/channels', '/admin/nodes', '/admin/users/a/sessions', '/dashboard/channels', '/bayeux', '/bayeux/', '/cometd', '/cometd/', '/health', '/herald.js', '/', '/ticker', '/nope', '/bayeux/..', '/pub', '/sub', '/health/x', '//', '//bayeux', '///', 'http://127.0.0.1/bayeux', 'http://evil.example/pub/', '*'),
    weight: 2,
  },
);
const segment = fc.oneof(
  { arbitrary: fc.constantFrom('fuzz', 'a', 'b', REAL), weight: 4 },
  fc.constantFrom('*', '**', 'meta', 'service', 'handshake', '..', '.', '', '%2F', '%2e%2e', '%', '%zz', '%00', '%C0%AF', '%E2%80%A8', '%ff', '~', ';', "'", '"', '%3Cscript%3E', 'ä', 'x'.repeat(300), '__proto__'),
  // Red team (issue 15 B): names past the 1024-character limit, encoded separators and dots, a surrogate half.
  fc.constantFrom('y'.repeat(1100), 'a%2F..%2Fb', '%2e', '%ED%A0%80', '%EF%BF%BF', 'a%0d%0aX-Injected:%201'),
  fc.string({ unit: 'binary', maxLength: 10 }).map(pct),
);
const QUERY_KEYS = ['callback', 'jsonp', 'since', 'limit', 'transport', 'wait', 'message', 'lastEventId', 'x', ''];
const queryValue = fc.oneof(
  fc.constantFrom('cb', '0', '1', '-1', '1e3', '1000', '10001', 'Infinity', '', 'stream', 'multipart', 'iframe', 'sse', 'zzzzzz', '0000000000000', '<x>', 'a.b', 'x'.repeat(80), '[{"channel":"/fuzz/a","data":1}]'),
  // Callback names that are expressions, or identifiers only at a glance.
  fc.constantFrom('length-alert', 'a;alert(1)', 'a[0]', 'constructor.constructor', 'ａlert', 'a\u200bb', 'x'.repeat(2048)),
  // Cursors no engine gave: future ids, a pattern's cursor on a channel, ids of the wrong shape.
  fc.constantFrom('zzzzzzzzzzzzz', 'z'.repeat(64), `${'f'.repeat(40)}z1`, `${'0'.repeat(40)}z0`, '1zzzzzzzzzzzz', '9'.repeat(65)),
  messageId,
  fc.string({ unit: 'binary', maxLength: 20 }),
);
const headerValue = fc.string({ unit: 'binary-ascii', maxLength: 40 }).map((s) => s.replace(/[^\t\x20-\x7e]/g, ''));
const header = (name: string, value: fc.Arbitrary<string>) => value.map((v): [string, string][] => [[name, v]]);
/** A few headers at a time (so most requests get past the origin check), each a known one or any. */
const httpHeaders = fc.array(
  fc.oneof(
    header('content-type', fc.oneof(fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/json; charset=latin1'), headerValue)),
    header('accept', fc.oneof(fc.constantFrom('text/event-stream', 'text/event-stream', 'application/json', '*/*', 'text/event-stream, */*', ''), headerValue)),
    header('origin', fc.oneof(fc.constantFrom('http://localhost:3000', 'http://127.0.0.1', 'http://evil.example', 'null', '', 'file://', 'http://[::1]:1'), headerValue)),
    header('cookie', fc.oneof(fc.constantFrom('BAYEUX_BROWSER=abc', 'BAYEUX_BROWSER=', 'BAYEUX_BROWSER=a; BAYEUX_BROWSER=b', '=;;=;', `BAYEUX_BROWSER=${REAL}`, 'herald_token=x.y.z', 'herald_token=', 'herald_token=a; herald_token=b'), headerValue)),
    header('sec-fetch-site', fc.constantFrom('same-origin', 'cross-site', 'same-site', 'none', '')),
    header('if-none-match', fc.oneof(fc.constantFrom('"0"', 'W/"0"', '*', '"', '"a", "b"', `"${'f'.repeat(40)}z1"`, '"zzzzzzzzzzzzz"', 'W/"zzzzzzzzzzzzz", "0"'), messageId, headerValue)),
    header('content-encoding', fc.constantFrom('gzip', 'identity', 'br, gzip', '', 'x'.repeat(60))),
    header('transfer-encoding', fc.constantFrom('chunked', 'gzip, chunked')),
    header('last-event-id', fc.oneof(messageId, headerValue)),
    header('authorization', fc.oneof(fc.constantFrom('Bearer x', 'Bearer ', 'Basic eDp4', 'Bearer ' + 'k'.repeat(40)), headerValue)),
    header('host', fc.constantFrom('evil.example', '127.0.0.1', 'localhost:1', '')),
    header('x-forwarded-for', fc.constantFrom('1.2.3.4', '::1', 'garbage', '1.2.3.4, 127.0.0.1', '[::1]:80, unknown', '', ', ,')),
    header('forwarded', fc.constantFrom('for=1.2.3.4', 'for="[::1]:80";proto=http', 'for=unknown, for=_hidden', 'garbage')),
    header('connection', fc.constantFrom('keep-alive', 'close')),
    fc.record({
      upgrade: fc.constantFrom('websocket', 'WebSocket', 'h2c', ''),
      connection: fc.constantFrom('upgrade', 'Upgrade, keep-alive'),
      version: fc.constantFrom('13', '8', 'x'),
      key: fc.constantFrom('dGhlIHNhbXBsZSBub25jZQ==', 'short', ''),
    }).map(({ upgrade, connection, version, key }): [string, string][] => [['upgrade', upgrade], ['connection', connection], ['sec-websocket-version', version], ['sec-websocket-key', key]]),
    fc.tuple(fc.stringMatching(/^x-[a-z0-9-]{1,12}$/), headerValue).map((entry): [string, string][] => [entry]),
  ),
  { maxLength: 4 },
).map((entries) => Object.fromEntries(entries.flat()) as Record<string, string>);
interface HttpCase {
  /** Handshake first, so REAL in the path, headers or body names a live session. */
  real: boolean;
  method: string;
  prefix: string;
  segments: string[];
  query: [string, string][];
  rawQuery: boolean;
  headers: Record<string, string>;
  body: string | Uint8Array | undefined;
}
const httpCase: fc.Arbitrary<HttpCase> = fc.record({
  real: fc.boolean(),
  method: fc.oneof(
    { arbitrary: fc.constant('GET'), weight: 8 },
    { arbitrary: fc.constant('POST'), weight: 4 },
    { arbitrary: fc.constantFrom('PUT', 'DELETE', 'OPTIONS', 'PATCH', 'HEAD'), weight: 3 },
    fc.constantFrom('PROPFIND', 'M-SEARCH', 'FOO', 'TRACE', 'get', 'PURGE', 'LINK'),
  ),
  prefix,
  segments: fc.array(segment, { maxLength: 3 }),
  query: fc.array(fc.tuple(fc.constantFrom(...QUERY_KEYS), queryValue), { maxLength: 4 }),
  rawQuery: fc.boolean(),
  headers: httpHeaders,
  body: fc.option(
    fc.oneof(
      fc.array(someMessage, { maxLength: 4 }).map((batch) => JSON.stringify(batch)),
      anyJson.map((v) => JSON.stringify(v)),
      someMessage.map((m) => `message=${pct(JSON.stringify(m))}`),
      fc.string({ unit: 'binary', maxLength: 60 }),
      hugeString,
      fc.uint8Array({ maxLength: 40 }),
      deepNesting,
    ),
    { nil: undefined },
  ),
});

async function runHttpCase(c: HttpCase): Promise<void> {
  const before = await startCase();
  const realId = c.real ? (await realSession()).clientId : 'nobody';
  const query = c.query.map(([k, v]) => (c.rawQuery ? `${k}=${v.replace(/[^\x21-\x7e]|#/g, (ch) => pct(ch))}` : `${pct(k)}=${pct(v)}`)).join('&');
  const path = (c.prefix + c.segments.join('/')).replaceAll(REAL, realId) + (query === '' ? '' : `?${query}`);
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(c.headers)) headers[key] = value.replaceAll(REAL, realId);
  const body = typeof c.body === 'string' ? c.body.replaceAll(REAL, realId) : c.body;
  const what = `${c.method} ${path} ${JSON.stringify(headers)} body=${typeof body === 'string' ? body.slice(0, 200) : body === undefined ? '-' : Buffer.from(body).toString('hex')}`;
  const answer = await fire({ method: c.method, path, headers, body });
  count(`http ${answer.status || answer.error?.split(':')[0]}`);
  if (answer.status >= 500 || fatal(answer.error)) throw new Error(`HTTP ${answer.status || answer.error} for ${what}: ${answer.body}`);
  await finishCase(before, what);
}

describe('fuzzing a running Herald with HTTP requests', { concurrency: false }, () => {
  let baseline: MemorySample;

  before(startFuzzServer);
  after(stopFuzzServer);

  test('warm-up, then a memory baseline once every session has expired', async (t) => {
    baseline = await warmUpBaseline(t, () => fuzz(t, httpCase, runHttpCase, { seed: SEED + 101, runs: 30, budgetMs: 3000 }));
  });

  test('random HTTP requests: methods, paths, query strings, headers, bodies', (t) =>
    fuzz(t, httpCase, runHttpCase, { seed: SEED + 1, runs: RUNS, budgetMs: BUDGET_MS }));

  test('afterwards: a normal round trip still works, everything is released, memory is back to baseline', (t) => assertReleased(t, baseline));
});
