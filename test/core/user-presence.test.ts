/**
 * Who is online, with time in the test's hands: the states alone (time passed in), then a node's
 * tracker (user-presence.ts) over a memory engine and real sessions, on node:test's mock timers
 * read through the injected clock — a user is online from its first session, offline exactly when
 * the grace window after its last one ends, and a reconnect, a second tab or a handover between
 * tabs within the window says nothing. Anonymous sessions are not users.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { Principal } from '../../src/core/access.js';
import { systemClock } from '../../src/core/clock.js';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import type { Session } from '../../src/core/session.js';
import { SessionStore } from '../../src/core/session-store.js';
import { UserPresence } from '../../src/core/user-presence.js';
import { UserRecords } from '../../src/core/user-records.js';

const GRACE = 1000;
const SWEEP = 60_000;

describe('the user states', () => {
  test('online at the first connection; leaving at the last; offline once the window has passed, not a millisecond early', () => {
    const records = new UserRecords();
    assert.equal(records.connected('ada'), true);
    assert.equal(records.connected('ada'), false, 'a second tab');
    assert.equal(records.disconnected('ada', 100), false, 'a tab left');
    assert.equal(records.disconnected('ada', 200), true, 'the last one: leaving');
    assert.deepEqual(records.sweep(200 + GRACE - 1, GRACE), []);
    assert.deepEqual(records.sweep(200 + GRACE, GRACE), ['ada']);
    assert.deepEqual(records.sweep(10_000, GRACE), [], 'told once');
    assert.equal(records.size, 0);
  });

  test('back within the window: neither online nor offline; a disconnect of a user never connected says nothing', () => {
    const records = new UserRecords();
    records.connected('ada');
    records.disconnected('ada', 0);
    assert.equal(records.connected('ada'), false, 'back within the window');
    assert.deepEqual(records.sweep(GRACE * 10, GRACE), []);
    assert.equal(records.disconnected('bob', 0), false);
  });
});

const principal = (sub: string): Principal => ({ subject: sub, expiresAt: undefined, claims: { sub }, grants: { subscribe: [], publish: [] } });

function node(t: TestContext) {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
  const engine = new MemoryEngine({ clock: systemClock });
  const sessions = new SessionStore({ maxIntervalMs: 3_600_000, maxQueue: 100, clock: systemClock });
  const users = new UserPresence(engine, sessions, systemClock, { graceMs: GRACE, sweepMs: SWEEP }, (error) => assert.fail(String(error)));
  const told: string[] = [];
  users.onTransition(({ kind, user, at }) => told.push(`${kind} ${user} +${at - 1_000_000}`));
  t.after(() => {
    users.close();
    sessions.dispose();
    return engine.close();
  });
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve)).then(() => t.mock.timers.tick(0)).then(() => new Promise<void>((resolve) => setImmediate(resolve)));
  const open = async (user: string | undefined): Promise<Session> => {
    const session = sessions.create();
    if (user !== undefined) session.principal = principal(user);
    await settle();
    return session;
  };
  const close = async (session: Session) => {
    sessions.close(session, 'client');
    await settle();
  };
  const tick = async (ms: number) => {
    t.mock.timers.tick(ms);
    await settle();
  };
  return { told, open, close, tick, sessions };
}

describe('the tracker of a node (mock timers through the injected clock)', () => {
  test('online at the first session; offline exactly when the window after the last ends', async (t) => {
    const { told, open, close, tick } = node(t);
    const first = await open('ada');
    const second = await open('ada');
    assert.deepEqual(told, ['online ada +0']);
    await close(first);
    await tick(GRACE * 3);
    assert.deepEqual(told, ['online ada +0'], 'a tab is still open');
    await close(second);
    await tick(GRACE - 1);
    assert.deepEqual(told, ['online ada +0'], 'not before the window ends');
    await tick(1);
    assert.deepEqual(told, ['online ada +0', `offline ada +${GRACE * 4}`]);
  });

  test('reconnects and handovers within the window are not offline and online; anonymous sessions are not users', async (t) => {
    const { told, open, close, tick } = node(t);
    let ada = await open('ada');
    for (let i = 0; i < 5; i++) {
      await close(ada);
      await tick(GRACE - 1);
      ada = await open('ada');
    }
    await open(undefined);
    await close(await open(undefined));
    await tick(GRACE * 5);
    assert.deepEqual(told, ['online ada +0']);
  });

  test('a listener added late counts the sessions there already', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 0 });
    const engine = new MemoryEngine({ clock: systemClock });
    const sessions = new SessionStore({ maxIntervalMs: 3_600_000, maxQueue: 100, clock: systemClock });
    const there = sessions.create();
    there.principal = principal('cy');
    const users = new UserPresence(engine, sessions, systemClock, { graceMs: GRACE, sweepMs: SWEEP }, (error) => assert.fail(String(error)));
    const told: string[] = [];
    users.onTransition(({ kind, user }) => told.push(`${kind} ${user}`));
    t.after(() => (users.close(), sessions.dispose(), engine.close()));
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(told, ['online cy']);
    sessions.close(there, 'client');
    await new Promise<void>((resolve) => setImmediate(resolve));
    t.mock.timers.tick(GRACE);
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(told, ['online cy', 'offline cy']);
  });
});
