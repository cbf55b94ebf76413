/** Reconnection back-off: the schedule itself, and a client that follows it against a failing server (fake timers). */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Backoff } from '../../src/client/backoff.js';
import { Herald } from '../../src/client/herald.js';
import type { State, StateDetail } from '../../src/client/upstream.js';
import { onCleanup } from '../helpers/cleanup.js';

test('delays double from the initial one up to the cap, and start over after a reset', () => {
  const backoff = new Backoff({ initialMs: 1000, maxMs: 10_000, factor: 2, jitter: 0 });
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => backoff.next()), [1000, 2000, 4000, 8000, 10_000, 10_000]);
  backoff.reset();
  assert.equal(backoff.next(), 1000);
});

test('jitter only shortens a delay, by at most its share, so clients spread out under the cap', () => {
  const draws = [0, 0.5, 0.999];
  const backoff = new Backoff({ initialMs: 1000, maxMs: 4000, jitter: 0.5 }, () => draws.shift()!);
  assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [1000, 1500, 2002]);
  const spread = new Set(Array.from({ length: 50 }, () => new Backoff({ initialMs: 1000, jitter: 0.5 }).next()));
  assert.ok(spread.size > 10, 'fifty clients do not all retry at the same moment');
  // Rounded to whole milliseconds: a draw just under 1 lands on 500 itself.
  for (const delay of spread) assert.ok(delay >= 500 && delay <= 1000, String(delay));
});

test('a huge number of failures does not overflow the cap', () => {
  const backoff = new Backoff({ initialMs: 1000, maxMs: 30_000, jitter: 0 });
  for (let i = 0; i < 5000; i++) backoff.next();
  assert.equal(backoff.next(), 30_000);
});

test('bad options are refused', () => {
  assert.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }), RangeError);
  assert.throws(() => new Backoff({ jitter: 2 }), RangeError);
  assert.throws(() => new Backoff({ factor: 0.5 }), RangeError);
});

test('a client facing a failing server retries exactly on the back-off schedule, not a moment before', async (t) => {
  // A server that is up but failing: every request gets a 503.
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    req.resume();
    res.writeHead(503, { 'Content-Type': 'application/json' }).end('{"error":"overloaded"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(t, () => new Promise((resolve) => server.close(resolve)));
  const { port } = server.address() as AddressInfo;

  t.mock.timers.enable({ apis: ['setTimeout'] });
  const events: { state: State; detail: StateDetail }[] = [];
  let nextEvent: (() => void) | undefined;
  const client = new Herald(`http://127.0.0.1:${port}/bayeux`, {
    transports: ['long-polling'],
    backoff: { initialMs: 1000, maxMs: 8000, factor: 2, jitter: 0.5 },
    random: () => 0, // no jitter: the schedule is exact
    shareConnection: false,
  });
  onCleanup(t, () => client.close());
  client.on('state', (state, detail) => {
    events.push({ state, detail });
    nextEvent?.();
  });
  const until = (what: (e: { state: State; detail: StateDetail }) => boolean) =>
    new Promise<StateDetail>((resolve) => {
      const check = () => {
        const found = events.find(what);
        if (found !== undefined) {
          events.length = 0;
          nextEvent = undefined;
          resolve(found.detail);
        }
      };
      nextEvent = check;
      check();
    });

  const expected = [1000, 2000, 4000, 8000, 8000];
  for (const [attempt, delayMs] of expected.entries()) {
    // The request fails over real sockets; then the client says how long it will wait.
    const detail = await until((e) => e.state === 'reconnecting');
    assert.equal(detail.delayMs, delayMs, `delay before retry ${attempt + 1}`);
    assert.match(detail.error?.message ?? '', /503/);
    t.mock.timers.tick(delayMs - 1);
    assert.equal(events.length, 0, `no retry 1 ms before ${delayMs} ms`);
    t.mock.timers.tick(1);
    assert.deepEqual(events.map((e) => e.state), ['connecting'], `retry ${attempt + 1} starts at ${delayMs} ms`);
    events.length = 0;
  }
  assert.ok(requests >= expected.length, 'the server saw every attempt');
});
