/**
 * Fuzzing a running Herald with Bayeux (fast-check): random and mutated Bayeux messages, in
 * batches or alone, as JSON, cut-off text or bytes that are not UTF-8, over every HTTP encoding
 * (JSON, form, text/plain, GET, JSONP) and over WebSocket, several at once on one session while
 * the server publishes to it. Bounded by runs and by time. Whatever arrives, Herald must answer
 * below 500, never close a socket as an internal error, log no error, raise no unhandled
 * rejection or uncaught exception, still serve a normal round trip, and give back its sessions,
 * subscriptions, sockets and memory once the sessions have expired.
 *
 * Replay a failure with FUZZ_SEED=<seed printed in the output>; FUZZ_RUNS and FUZZ_SECONDS scale
 * the group (defaults: 1500 runs, 9 s). HTTP requests: fuzz-http.test.ts; WebSocket frames:
 * fuzz-websocket.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { fatal, fire, isBad, pct, realSession, withReal, withWs } from '../helpers/fuzz-clients.js';
import type { Req } from '../helpers/fuzz-clients.js';
import { deepNesting, POOL, someMessage, weird } from '../helpers/fuzz-messages.js';
import { assertReleased, BUDGET_MS, count, finishCase, fuzz, REAL, RUNS, SEED, startCase, startFuzzServer, stopFuzzServer, target, warmUpBaseline } from '../helpers/fuzz.js';
import type { MemorySample } from '../helpers/fuzz.js';

/** What travels: JSON (a batch, one message, anything), text that may not be JSON, or bytes that may not be UTF-8. */
type Payload = { json: unknown } | { text: string } | { bytes: Uint8Array };
const payload: fc.Arbitrary<Payload> = fc.oneof(
  { arbitrary: fc.array(someMessage, { maxLength: 6 }).map((json) => ({ json })), weight: 10 },
  { arbitrary: someMessage.map((json) => ({ json })), weight: 3 },
  fc.array(fc.oneof(someMessage, weird), { maxLength: 4 }).map((json) => ({ json })),
  weird.map((json) => ({ json })),
  fc.tuple(fc.array(someMessage, { minLength: 1, maxLength: 3 }), fc.nat()).map(([batch, cut]) => {
    const text = JSON.stringify(batch);
    return { text: text.slice(0, cut % text.length) };
  }),
  fc.oneof(
    deepNesting,
    fc.string({ unit: 'binary', maxLength: 60 }),
    fc.constantFrom(
      '', ' ', 'null', '[]', '[[]]', '{}', '\uFEFF[{"channel":"/fuzz/a","data":1}]',
      `[{"channel":"/meta/subscribe","clientId":"${REAL}","subscription":"/fuzz/a","__proto__":{"clientId":"x"}}]`,
      `[{"channel":"/meta/connect","clientId":"${REAL}","connectionType":"long-polling","ext":{"herald":{"since":{"__proto__":"1","constructor":"2","/fuzz/a":"0"}}}}]`,
      `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"__proto__":{"ack":true}}}]`,
      '[{"channel":"/fuzz/a","data":1e999}]', '[{"channel":"/fuzz/a","id":1e999}]', '[{"channel":"/fuzz/a","data":"\\ud800"}]',
    ),
  ).map((text) => ({ text })),
  fc.uint8Array({ minLength: 1, maxLength: 40 }).map((bytes) => ({ bytes: Uint8Array.from([0xff, 0xfe, ...bytes]) })),
);

/** The payload as it goes on the wire, the session's clientId in place of REAL. */
function payloadText(p: Payload, clientId: string): string | Buffer {
  if ('json' in p) return JSON.stringify(withReal(p.json, clientId)) ?? 'undefined';
  if ('text' in p) return p.text.replaceAll(REAL, clientId);
  return Buffer.from(p.bytes);
}

type Via = 'post-json' | 'post-form' | 'post-text' | 'get' | 'jsonp' | 'ws';
/** One request (or one WebSocket) carrying a payload. */
interface BayeuxSend {
  via: Via;
  path: string;
  contentType: string;
  jsonp: string;
  /** Over WebSocket: bytes go as a binary frame, else as a text frame that is not UTF-8. */
  binary: boolean;
  payload: Payload;
}
interface BayeuxCase {
  /** Handshake first, and put the real clientId (and cookie) wherever the payloads say REAL. */
  real: boolean;
  /** Sent at the same time, racing each other on the same session. */
  sends: BayeuxSend[];
  /** Messages the server publishes meanwhile (past maxQueue, a subscribed session is a slow consumer). */
  flood: number;
  floodChannel: string;
}
const bayeuxSend: fc.Arbitrary<BayeuxSend> = fc.record({
  via: fc.constantFrom<Via>('post-json', 'post-json', 'post-json', 'post-form', 'post-text', 'get', 'jsonp', 'ws', 'ws', 'ws'),
  path: fc.constantFrom('/bayeux', '/cometd', '/bayeux/connect', '/cometd/handshake'),
  contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/vnd.api+json', 'APPLICATION/JSON', 'application/jsonx'),
  jsonp: fc.oneof(
    fc.constantFrom('cb', 'jsonpcallback', 'a.b$_', 'a.b$_-', '', '<script>', 'x'.repeat(65), 'alert(1)//'),
    // Names that are expressions or look like identifiers but are not (see callback-names.test.ts).
    fc.constantFrom('length-alert', 'a;alert(1)', 'a[0]', 'constructor.constructor', 'a..b', 'new', 'ａlert', 'a\u2028b', 'x'.repeat(2048)),
  ),
  binary: fc.boolean(),
  payload,
});
const bayeuxCase: fc.Arbitrary<BayeuxCase> = fc.record({
  real: fc.boolean(),
  sends: fc.oneof({ arbitrary: fc.tuple(bayeuxSend), weight: 3 }, fc.array(bayeuxSend, { minLength: 2, maxLength: 3 })),
  flood: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, fc.integer({ min: 1, max: 80 })),
  floodChannel: fc.constantFrom(...POOL),
});

async function runBayeuxCase(c: BayeuxCase): Promise<void> {
  const before = await startCase();
  const session = c.real ? await realSession() : { clientId: REAL, cookie: '' };
  const headers: Record<string, string> = session.cookie === '' ? {} : { Cookie: session.cookie };
  const bodies = c.sends.map((send) => payloadText(send.payload, session.clientId));
  const what = c.sends
    .map((send, i) => {
      const body = bodies[i]!;
      return `${send.via} ${send.path} ${typeof body === 'string' ? body.slice(0, 300) : `bytes ${body.toString('hex').slice(0, 100)}`}`;
    })
    .join('\n  and at once: ')
    .concat(c.flood > 0 ? `\n  while the server publishes ${c.flood} messages to ${c.floodChannel}` : '');
  const flood = async () => {
    for (let i = 0; i < c.flood; i++) await target().herald.publish(c.floodChannel, { i });
  };
  const [failures] = await Promise.all([Promise.all(c.sends.map((send, i) => bayeuxSendFailure(send, bodies[i]!, headers))), flood()]);
  const failure = failures.find((f) => f !== undefined);
  if (failure !== undefined) throw new Error(`${failure} for ${what}`);
  await finishCase(before, what);
}

/** Sends one payload; returns what went wrong, if anything did. */
async function bayeuxSendFailure(send: BayeuxSend, body: string | Buffer, headers: Record<string, string>): Promise<string | undefined> {
  if (send.via === 'ws') {
    const result = await withWs(send.path, headers, (ws) => ws.send(body, { binary: typeof body !== 'string' && send.binary }), 'bayeux');
    count(`bayeux ws ${result.status ?? result.close?.code ?? 'open'}`);
    if (fatal(result.error)) return result.error;
    if (result.status !== undefined && result.status >= 500) return `upgrade answered ${result.status}`;
    if (result.close !== undefined && isBad(result.close.code, result.close.reason)) return `socket closed ${result.close.code} ${result.close.reason}`;
    return undefined;
  }
  const text = typeof body === 'string' ? body : body.toString('latin1');
  const { via, path } = send;
  const req: Req =
    via === 'post-json' ? { method: 'POST', path, headers: { ...headers, 'Content-Type': send.contentType }, body }
    : via === 'post-form' ? { method: 'POST', path, headers: { ...headers, 'Content-Type': 'application/x-www-form-urlencoded' }, body: `message=${pct(text)}` }
    : via === 'post-text' ? { method: 'POST', path, headers: { ...headers, 'Content-Type': 'text/plain;charset=UTF-8' }, body: `message=${pct(text)}` }
    : via === 'get' ? { method: 'GET', path: `${path}?message=${pct(text)}`, headers }
    : { method: 'GET', path: `${path}?jsonp=${pct(send.jsonp)}&message=${pct(text)}`, headers };
  const answer = await fire(req, 400);
  count(`bayeux ${via} ${answer.status || answer.error}`);
  if (answer.status >= 500 || fatal(answer.error)) return `HTTP ${answer.status || answer.error}: ${answer.body}`;
  return undefined;
}

describe('fuzzing a running Herald with Bayeux messages', { concurrency: false }, () => {
  let baseline: MemorySample;

  before(startFuzzServer);
  after(stopFuzzServer);

  test('warm-up, then a memory baseline once every session has expired', async (t) => {
    baseline = await warmUpBaseline(t, () => fuzz(t, bayeuxCase, runBayeuxCase, { seed: SEED + 100, runs: 30, budgetMs: 3000 }));
  });

  test('random and mutated Bayeux messages, over every HTTP encoding and over WebSocket', (t) =>
    fuzz(t, bayeuxCase, runBayeuxCase, { seed: SEED, runs: RUNS, budgetMs: BUDGET_MS }));

  test('afterwards: a normal round trip still works, everything is released, memory is back to baseline', (t) => assertReleased(t, baseline));
});
