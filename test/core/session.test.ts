import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Hub } from '../../src/core/hub.js';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import { Delivery } from '../../src/core/message.js';
import type { Message } from '../../src/core/message.js';
import type { CloseReason, ResumeReason } from '../../src/core/session.js';
import { SessionStore } from '../../src/core/session-store.js';

function setup(t: { after(fn: () => unknown): void }, options: { maxIntervalMs?: number; maxQueue?: number; writeDelayMs?: number } = {}) {
  const engine = new MemoryEngine();
  const sessions = new SessionStore({ maxIntervalMs: options.maxIntervalMs ?? 10_000, maxQueue: options.maxQueue ?? 100, sweepIntervalMs: 1000, writeDelayMs: options.writeDelayMs });
  const hub = new Hub(engine, sessions);
  const closed: [string, CloseReason][] = [];
  sessions.onClosed((s, reason) => closed.push([s.id, reason]));
  t.after(() => {
    sessions.dispose();
    return engine.close();
  });
  return { engine, sessions, hub, closed };
}

function recorder() {
  const reasons: ResumeReason[] = [];
  return { reasons, waiter: { resume: (reason: ResumeReason) => void reasons.push(reason) } };
}

describe('Session', () => {
  test('expires after maxInterval without life, and frees its subscriptions', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
    const { sessions, hub, closed } = setup(t, { maxIntervalMs: 10_000 });
    const session = sessions.create();
    void hub.subscribe(session, '/a/**');
    assert.equal(hub.patternCount, 1);
    t.mock.timers.tick(9_000);
    assert.equal(sessions.size, 1, 'not yet');
    session.touch(); // a connect arrived
    t.mock.timers.tick(9_000);
    assert.equal(sessions.size, 1, 'touch restarted the countdown');
    t.mock.timers.tick(2_000);
    assert.equal(sessions.size, 0, 'expired');
    assert.deepEqual(closed, [[session.id, 'expired']]);
    assert.equal(hub.patternCount, 0, 'its subscription is gone from the index');
    assert.equal(session.subscriptions.size, 0);
    assert.equal(sessions.get(session.id), undefined);
  });

  test('never expires while a connect is held; the countdown starts when it ends', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
    const { sessions } = setup(t, { maxIntervalMs: 10_000 });
    const session = sessions.create();
    const { reasons, waiter } = recorder();
    session.hold(waiter, 60_000);
    t.mock.timers.tick(59_000);
    assert.equal(sessions.size, 1);
    t.mock.timers.tick(1_000);
    assert.deepEqual(reasons, ['timeout']);
    t.mock.timers.tick(9_000);
    assert.equal(sessions.size, 1, 'counted from the end of the hold');
    t.mock.timers.tick(2_000);
    assert.equal(sessions.size, 0);
  });

  test('holds one request at a time: a new hold resumes the old one as replaced', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
    const { sessions } = setup(t);
    const session = sessions.create();
    const first = recorder();
    const second = recorder();
    session.hold(first.waiter, 30_000);
    session.hold(second.waiter, 30_000);
    assert.deepEqual(first.reasons, ['replaced']);
    assert.deepEqual(second.reasons, []);
    t.mock.timers.tick(30_000);
    assert.deepEqual(first.reasons, ['replaced'], 'the old timer is gone');
    assert.deepEqual(second.reasons, ['timeout']);
  });

  test('a cancelled hold is never resumed', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
    const { sessions } = setup(t);
    const session = sessions.create();
    const { reasons, waiter } = recorder();
    session.hold(waiter, 1000);
    session.cancelHold(waiter);
    t.mock.timers.tick(5000);
    assert.deepEqual(reasons, []);
    assert.equal(session.isHeld, false);
  });

  test('closing resumes the held request and clears the queue', async (t) => {
    const { sessions, engine, hub } = setup(t);
    const session = sessions.create();
    await hub.subscribe(session, '/q');
    await engine.publish({ channel: '/q', data: 1 });
    assert.equal(session.queueLength, 1);
    session.drain();
    const { reasons, waiter } = recorder();
    session.hold(waiter, 30_000);
    sessions.close(session, 'shutdown');
    assert.deepEqual(reasons, ['closed']);
    assert.equal(session.closeReason, 'shutdown');
    await engine.publish({ channel: '/q', data: 2 });
    assert.equal(session.queueLength, 0, 'a closed session takes nothing');
  });
});

describe('fan-out', () => {
  test('a burst in one tick resumes a held request once, with every message, in order', async (t) => {
    const { sessions, engine, hub } = setup(t);
    const session = sessions.create();
    await hub.subscribe(session, '/burst/*');
    const { reasons, waiter } = recorder();
    session.hold(waiter, 30_000);
    await Promise.all(Array.from({ length: 50 }, (_, i) => engine.publish({ channel: '/burst/x', data: i })));
    assert.deepEqual(reasons, [], 'flushed on the next turn, not per message');
    await nextTurn();
    assert.deepEqual(reasons, ['messages']);
    assert.deepEqual(session.drain().map((d) => d.message.data), Array.from({ length: 50 }, (_, i) => i));
  });

  test('one publish reaches each matching session once, sharing one encoding', async (t) => {
    const { sessions, engine, hub } = setup(t);
    const a = sessions.create();
    const b = sessions.create();
    await hub.subscribe(a, '/s/x');
    await hub.subscribe(a, '/s/*');
    await hub.subscribe(a, '/**');
    await hub.subscribe(b, '/s/**');
    await engine.publish({ channel: '/s/x', data: 'hi' });
    const [da] = a.drain();
    const [db] = b.drain();
    assert.ok(da && db);
    assert.equal(a.queueLength + b.queueLength, 0, 'once each despite three matching patterns');
    assert.equal(da, db, 'the same Delivery object');
    let encodes = 0;
    const format = { encode: () => `#${++encodes}` };
    assert.equal(da.encode(format), '#1');
    assert.equal(db.encode(format), '#1');
    assert.equal(encodes, 1);
  });

  test('a slow consumer whose queue fills is closed; others keep receiving', async (t) => {
    const { sessions, engine, hub, closed } = setup(t, { maxQueue: 5 });
    const slow = sessions.create();
    const fast = sessions.create();
    await hub.subscribe(slow, '/f');
    await hub.subscribe(fast, '/f');
    for (let i = 0; i < 6; i++) {
      await engine.publish({ channel: '/f', data: i });
      if (i < 5) assert.equal(fast.drain().length, 1);
    }
    assert.deepEqual(closed, [[slow.id, 'queue_full']]);
    assert.equal(fast.drain().length, 1, 'the message that overflowed the slow one still reached the fast one');
    const later = await engine.publish({ channel: '/f', data: 'later' });
    assert.equal(fast.drain().length, 1);
    assert.equal(hub.takeRecipientCount(later.id), 1, 'the closed one is no longer a recipient');
  });

  test('unsubscribing the last local subscriber withdraws interest from the engine', async (t) => {
    const { sessions, engine, hub } = setup(t);
    const seen: unknown[] = [];
    const a = sessions.create();
    await hub.subscribe(a, '/u');
    await hub.subscribe(a, '/u');
    engine.onMessage((m) => seen.push(m.data)); // observe what the engine still forwards
    await engine.publish({ channel: '/u', data: 1 });
    await hub.unsubscribe(a, '/u');
    await engine.publish({ channel: '/u', data: 2 });
    assert.deepEqual(seen, [1]);
  });
});

describe('streams', () => {
  test('an attached stream receives what was queued, then each burst as it comes', async (t) => {
    const { sessions, engine, hub } = setup(t);
    const session = sessions.create();
    await hub.subscribe(session, '/s');
    await engine.publish({ channel: '/s', data: 'queued' });
    const pushed: unknown[][] = [];
    const stream = { push: (d: { message: { data: unknown } }[]) => (pushed.push(d.map((x) => x.message.data)), true), sessionClosed: () => {} };
    session.attachStream(stream);
    await nextTurn();
    await engine.publish({ channel: '/s', data: 1 });
    await engine.publish({ channel: '/s', data: 2 });
    await nextTurn();
    assert.deepEqual(pushed, [['queued'], [1, 2]]);
    assert.equal(session.isAttended, true);
  });

  test('a stream that can no longer send leaves the messages queued for the next connection', async (t) => {
    const { sessions, engine, hub } = setup(t);
    const session = sessions.create();
    await hub.subscribe(session, '/s');
    const dead = { push: () => false, sessionClosed: () => {} };
    session.attachStream(dead);
    const held = recorder(); // a connect held on the same dying connection
    session.hold(held.waiter, 30_000);
    await engine.publish({ channel: '/s', data: 'a' });
    await nextTurn();
    await engine.publish({ channel: '/s', data: 'b' });
    assert.equal(session.stream, undefined, 'the dead stream is forgotten');
    assert.deepEqual(held.reasons, [], 'nothing was handed to the held request either');
    session.cancelHold(held.waiter);
    assert.deepEqual(session.drain().map((d) => d.message.data), ['a', 'b']);
  });

  test('with a write delay, what reaches any session within the window leaves in one push each when it ends', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
    const { sessions, engine, hub } = setup(t, { writeDelayMs: 5 });
    const pushed = new Map<string, unknown[][]>();
    for (const name of ['a', 'b']) {
      const session = sessions.create();
      await hub.subscribe(session, '/s');
      pushed.set(name, []);
      session.attachStream({ push: (d) => (pushed.get(name)!.push(d.map((x) => x.message.data)), true), sessionClosed: () => {} });
    }
    await engine.publish({ channel: '/s', data: 1 });
    t.mock.timers.tick(4);
    await engine.publish({ channel: '/s', data: 2 });
    await nextTurn();
    assert.deepEqual([...pushed.values()], [[], []], 'nothing leaves before the window ends, not even at the end of the tick');
    t.mock.timers.tick(1);
    assert.deepEqual([...pushed.values()], [[[1, 2]], [[1, 2]]], 'one push per session, in order');
    await engine.publish({ channel: '/s', data: 3 });
    t.mock.timers.tick(4);
    assert.deepEqual(pushed.get('a'), [[1, 2]], 'the next message opens a window of its own');
    t.mock.timers.tick(1);
    assert.deepEqual(pushed.get('a'), [[1, 2], [3]]);
  });

  test('closing the session tells the stream why', (t) => {
    const { sessions } = setup(t);
    const session = sessions.create();
    const reasons: CloseReason[] = [];
    session.attachStream({ push: () => true, sessionClosed: (reason) => void reasons.push(reason) });
    sessions.close(session, 'queue_full');
    assert.deepEqual(reasons, ['queue_full']);
  });

  test('a resume replays history once: the live copy of a replayed message that arrives after the replay is dropped', (t) => {
    // On Redis, a history read can see a message before pub/sub brings it to the node (the node's
    // own publish waiting for its echo, a channel being caught up): it then arrives a second time.
    const { sessions } = setup(t);
    const session = sessions.create();
    const message = (n: number): Message => ({ id: `0000000000${n}aaa`, channel: '/c', data: n, publishedAt: 0, size: 1 });
    session.replay([new Delivery(message(1)), new Delivery(message(2))]);
    session.enqueue(new Delivery(message(2)));
    session.enqueue(new Delivery(message(3)));
    session.enqueue(new Delivery({ ...message(1), channel: '/other' }));
    assert.deepEqual(session.drain().map((d) => [d.message.channel, d.message.data]), [['/c', 1], ['/c', 2], ['/c', 3], ['/other', 1]]);
    // Once past the replay, the channel's live messages pass as they come.
    session.enqueue(new Delivery(message(4)));
    assert.deepEqual(session.drain().map((d) => d.message.data), [4]);
  });
});
