/** The checker's verdict on synthetic histories: each way of breaking the promise is flagged, and only those. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkHistory, covers, describeViolations } from './model.js';
import type { History, Observation, PublishRecord, SubscriberRecord } from './model.js';

const CHANNEL = '/ck/a';

/** Seqs 0..n-1 acked on CHANNEL, published 100 ms apart from t=1000. */
function published(n: number, status: (seq: number) => PublishRecord['status'] = () => 'acked'): PublishRecord[] {
  return Array.from({ length: n }, (_, seq) => ({ door: 'rest', channel: CHANNEL, seq, status: status(seq), id: `id${seq}`, startedAt: 1000 + seq * 100 }));
}

/** A subscriber ready at t=900 that observed `events`: numbers are deliveries (at their publish time + 10), strings signals. */
function subscriber(events: (number | 'gap' | `stop:${string}` | { seq: number; at: number })[], target = CHANNEL): SubscriberRecord {
  let clock = 900;
  const observations: Observation[] = events.map((event) => {
    if (typeof event === 'number') {
      clock = 1000 + event * 100 + 10;
      return { kind: 'deliver', at: clock, channel: CHANNEL, seq: event };
    }
    if (typeof event === 'object') {
      clock = event.at;
      return { kind: 'deliver', at: clock, channel: CHANNEL, seq: event.seq };
    }
    if (event === 'gap') return { kind: 'gap', at: clock, target };
    return { kind: 'stop', at: clock, reason: event.slice(5) };
  });
  // A gap is told as the client comes back: just before the delivery that follows it.
  observations.forEach((o, i) => {
    const next = observations.slice(i + 1).find((later) => later.kind === 'deliver');
    if (o.kind === 'gap' && next !== undefined) observations[i] = { ...o, at: next.at - 1 };
  });
  return { name: 's1', door: 'sse', target, readyAt: 900, observations };
}

function history(publishes: PublishRecord[], ...subscribers: SubscriberRecord[]): History {
  return { seed: 42, publishes, subscribers, faults: [{ at: 1250, kind: 'cut', detail: 'all connections' }], quietAt: 1500 };
}

const kinds = (h: History, options = {}) => checkHistory(h, options).map((v) => `${v.kind}:${v.seq ?? '-'}`);

test('every acked message once, in order: no violation', () => {
  assert.deepEqual(kinds(history(published(8), subscriber([0, 1, 2, 3, 4, 5, 6, 7]))), []);
});

test('a loss is flagged at the first missing message, with the faults near it', () => {
  const h = history(published(8), subscriber([0, 1, 2, 4, 5, 6, 7]));
  const [v, ...rest] = checkHistory(h);
  assert.equal(rest.length, 0);
  assert.equal(v!.kind, 'loss');
  assert.equal(v!.seq, 3);
  assert.deepEqual(v!.expected, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(v!.received, [0, 1, 2, 4, 5, 6, 7]);
  assert.equal(v!.faults[0]!.kind, 'cut');
  const text = describeViolations(h, [v!]);
  assert.match(text, /seed 42/);
  assert.match(text, /loss .* subscriber s1 \(sse\), channel \/ck\/a: seq 3/);
});

test('a duplicate and a reorder are flagged', () => {
  assert.deepEqual(kinds(history(published(5), subscriber([0, 1, 2, 2, 3, 4]))), ['duplicate:2']);
  assert.deepEqual(kinds(history(published(5), subscriber([0, 1, 3, { seq: 2, at: 1400 }, 4]))), ['reorder:2']);
});

test('a delivery nobody published, or one the server refused, is a phantom', () => {
  assert.deepEqual(kinds(history(published(3), subscriber([0, 1, 2, 7]))), ['phantom:7']);
  assert.deepEqual(kinds(history(published(3, (seq) => (seq === 1 ? 'refused' : 'acked')), subscriber([0, 1, 2]))), ['phantom:1']);
});

test('an unacknowledged publish may or may not arrive', () => {
  const unknown = published(4, (seq) => (seq === 2 ? 'unknown' : 'acked'));
  assert.deepEqual(kinds(history(unknown, subscriber([0, 1, 3]))), []);
  assert.deepEqual(kinds(history(unknown, subscriber([0, 1, 2, 3]))), []);
});

test('a gap signal between the deliveries around a loss covers it; one before or long after does not', () => {
  assert.deepEqual(kinds(history(published(6), subscriber([0, 1, 'gap', 4, 5]))), []);
  assert.deepEqual(kinds(history(published(6), subscriber(['gap', 0, 1, 4, 5]))), ['loss:2'], 'told before the last delivery ahead of the loss');
  // Told within the same batch (just after the next delivery): still told.
  assert.deepEqual(kinds(history(published(6), subscriber([0, 1, 4, 'gap', 5]))), []);
  const late: History = history(published(6), {
    ...subscriber([0, 1, 4, 5]),
    observations: [...subscriber([0, 1, 4, 5]).observations, { kind: 'gap', at: 5000, target: CHANNEL }],
  });
  assert.deepEqual(kinds(late), ['loss:2'], 'told seconds after later messages arrived');
  assert.deepEqual(kinds(history(published(6), subscriber([0, 1, 'gap', 4, 5], '/ck/*'))), [], "a pattern's gap covers its channels");
});

test('a subscriber that hears nothing after the faults stop is stranded, unless told why it stopped', () => {
  assert.deepEqual(kinds(history(published(8), subscriber([0, 1, 2, 3]))), ['loss:4', 'stranded:5']);
  assert.deepEqual(kinds(history(published(8), subscriber([0, 1, 2, 3, 'stop:banned'])), { acceptStop: (r: string) => r === 'banned' }), []);
  assert.deepEqual(kinds(history(published(8), subscriber([0, 1, 2, 3, 'stop:token_expired']))), ['stopped:-', 'loss:4', 'stranded:5']);
  const never: SubscriberRecord = { name: 's2', door: 'cometd', target: CHANNEL, readyAt: undefined, observations: [] };
  assert.deepEqual(kinds(history(published(8), never)), ['stranded:5']);
});

test('messages published before the subscription was confirmed are not owed', () => {
  const late = { ...subscriber([5, 6, 7]), readyAt: 1450 };
  assert.deepEqual(kinds(history(published(8), late)), []);
});

test('patterns cover the channels beneath them, as the server matches them', () => {
  assert.ok(covers('/a/*', '/a/b'));
  assert.ok(!covers('/a/*', '/a/b/c'));
  assert.ok(!covers('/a/*', '/a'));
  assert.ok(covers('/a/**', '/a/b/c'));
  assert.ok(!covers('/a/**', '/ab/c'));
  assert.ok(covers('/a', '/a'));
});

test('a poller answered with a gap alone again and again spins, even when the gaps cover every loss', () => {
  const spinning: SubscriberRecord = { ...subscriber([0, 'gap', 'gap', 'gap', 'gap', 'gap', 7], '/ck/*'), gapOnlyRun: 5 };
  assert.deepEqual(kinds(history(published(8), spinning)), ['spinning:-']);
  const once: SubscriberRecord = { ...subscriber([0, 1, 'gap', 4, 5, 6, 7], '/ck/*'), gapOnlyRun: 1 };
  assert.deepEqual(kinds(history(published(8), once)), []);
});

test('a gap told before a message was published does not cover its loss', () => {
  const early: SubscriberRecord = { ...subscriber([0, 1, 4, 5], '/ck/*') };
  const told = { ...early, observations: [...early.observations.slice(0, 2), { kind: 'gap' as const, at: 1150, target: '/ck/*' }, ...early.observations.slice(2)] };
  assert.deepEqual(kinds(history(published(6), told)), ['loss:2']);
});
