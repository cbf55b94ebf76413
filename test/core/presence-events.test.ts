/**
 * Join/leave debouncing, with time in the test's hands: the state machine alone (time passed in),
 * then the node's follower (presence-events.ts) over a memory engine, a hub and real sessions,
 * on node:test's mock timers read through the injected clock — a member that comes back within
 * the grace window never leaves, one that does not leaves exactly when the window ends, and a
 * crowded channel gets counts instead.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { Principal } from '../../src/core/access.js';
import { systemClock } from '../../src/core/clock.js';
import { Hub } from '../../src/core/hub.js';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import { MemberDebouncer } from '../../src/core/presence-debounce.js';
import type { MemberTransition } from '../../src/core/presence-debounce.js';
import { PresenceEvents } from '../../src/core/presence-events.js';
import type { ChannelTransition } from '../../src/core/presence-events.js';
import { membersOf, presenceJoin } from '../../src/core/presence.js';
import type { PresenceMember } from '../../src/core/presence.js';
import type { Session } from '../../src/core/session.js';
import { SessionStore } from '../../src/core/session-store.js';

const GRACE = 1000;

function member(user: string, connections = 1, info?: unknown, joinedAt = 0): PresenceMember {
  return { user, connections, joinedAt, sessions: [], ...(info === undefined ? {} : { info }) };
}

const said = (transitions: MemberTransition[]) => transitions.map((t) => ('member' in t ? `${t.kind} ${t.member.user}` : t.kind));

describe('the debouncing state machine', () => {
  test('the first snapshot is the baseline; later arrivals join, the first of an empty channel occupies it', () => {
    const machine = new MemberDebouncer(GRACE);
    assert.deepEqual(said(machine.observe([member('ada')], 0)), [], 'ada was there already');
    assert.deepEqual(said(machine.observe([member('ada'), member('bob')], 10)), ['join bob']);
    const empty = new MemberDebouncer(GRACE);
    empty.observe([], 0);
    assert.deepEqual(said(empty.observe([member('ada')], 5)), ['occupied', 'join ada']);
  });

  test('a missed baseline: members that joined since the node began following join (and occupy); older ones were there', () => {
    const machine = new MemberDebouncer(GRACE);
    machine.missedBaseline(100);
    machine.missedBaseline(200);
    assert.deepEqual(said(machine.observe([member('bob', 1, undefined, 150), member('ada', 1, undefined, 99)], 300)), ['join bob'], 'the earliest failure counts; ada was there');
    const empty = new MemberDebouncer(GRACE);
    empty.missedBaseline(100);
    assert.deepEqual(said(empty.observe([member('bob', 1, undefined, 100)], 300)), ['occupied', 'join bob']);
    assert.deepEqual(said(empty.observe([member('bob'), member('cy')], 400)), ['join cy'], 'once: later snapshots are as ever');
  });

  test('a member unseen leaves only when the whole grace window has passed, and the last one vacates', () => {
    const machine = new MemberDebouncer(GRACE);
    machine.observe([member('ada'), member('bob')], 0);
    machine.observe([member('bob')], 100);
    assert.equal(machine.nextDue(), 100 + GRACE);
    assert.deepEqual(said(machine.due(100 + GRACE - 1)), [], 'not a millisecond early');
    assert.deepEqual(said(machine.due(100 + GRACE)), ['leave ada']);
    machine.observe([], 2000);
    assert.deepEqual(said(machine.due(2000 + GRACE)), ['leave bob', 'vacated']);
    assert.equal(machine.nextDue(), undefined);
    assert.equal(machine.size, 0);
  });

  test('flapping is silent: gone and back within the window (a reconnect, a node move, a tab handover) says nothing', () => {
    const machine = new MemberDebouncer(GRACE);
    machine.observe([member('ada')], 0);
    let t = 0;
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(said(machine.observe([], (t += 400))), []);
      assert.deepEqual(said(machine.due((t += 500))), [], 'still in its window');
      assert.deepEqual(said(machine.observe([member('ada', 2)], (t += 50))), [], 'back: no join');
      assert.deepEqual(said(machine.due((t += GRACE * 3))), [], 'present: no leave however long');
    }
    assert.equal(machine.members()[0]!.connections, 2, 'the latest snapshot counts');
  });

  test('a user is one member however many connections; new info replaces the old without a join', () => {
    const machine = new MemberDebouncer(GRACE);
    machine.observe([], 0);
    assert.deepEqual(said(machine.observe([member('ada', 3, { name: 'Ada' })], 1)), ['occupied', 'join ada']);
    assert.deepEqual(said(machine.observe([member('ada', 1, { name: 'Ada L.' })], 2)), []);
    assert.deepEqual(machine.members()[0]!.info, { name: 'Ada L.' });
    const grouped = membersOf([
      { session: 's1', user: 'ada', node: 'n1', joinedAt: 5, info: { name: 'old' } },
      { session: 's2', user: 'ada', node: 'n2', joinedAt: 9, info: { name: 'new' } },
      { session: 's3', user: 's3', anonymous: true, node: 'n1', joinedAt: 7 },
    ]);
    assert.deepEqual(
      grouped.map((m) => [m.user, m.connections, m.joinedAt, m.info, m.anonymous]),
      [
        ['ada', 2, 5, { name: 'new' }, undefined],
        ['s3', 1, 7, undefined, true],
      ],
    );
  });
});

const principal = (sub: string, info?: unknown): Principal => ({ subject: sub, expiresAt: undefined, claims: { sub, ...(info === undefined ? {} : { info }) }, grants: { subscribe: [], publish: [] } });

/** A node's presence parts on mock timers: engine, sessions, hub and the follower. */
function node(t: TestContext, maxMembers = 100, onError: (error: unknown) => void = (error) => assert.fail(String(error))) {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
  const engine = new MemoryEngine({ clock: systemClock });
  const sessions = new SessionStore({ maxIntervalMs: 3_600_000, maxQueue: 100, clock: systemClock });
  const hub = new Hub(engine, sessions);
  const events = new PresenceEvents(engine, hub, systemClock, { graceMs: GRACE, maxMembers, sweepMs: 60_000, eventsFor: (channel) => channel.startsWith('/chat/') }, onError);
  const transitions: string[] = [];
  events.onTransition((transition: ChannelTransition) => transitions.push('member' in transition ? `${transition.kind} ${transition.member.user} ${transition.channel}` : `${transition.kind} ${transition.channel}`));
  t.after(() => {
    events.close();
    sessions.dispose();
    return engine.close();
  });
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve)).then(() => t.mock.timers.tick(0)).then(() => new Promise<void>((resolve) => setImmediate(resolve)));
  const join = async (user: string, channel = '/chat/a', info?: unknown): Promise<Session> => {
    const session = sessions.create();
    session.principal = principal(user, info);
    await hub.subscribe(session, channel);
    await settle();
    return session;
  };
  /** What a session was told, as `kind user` lines (presence events only). */
  const heard = (session: Session) =>
    session
      .drain()
      .filter((delivery) => delivery.message.event !== undefined)
      .map((delivery) => `${delivery.message.event} ${JSON.stringify(delivery.message.data)}`);
  return { engine, sessions, hub, events, transitions, settle, join, heard };
}

describe('the follower of a node (mock timers through the injected clock)', () => {
  test('subscribers hear others join and leave, not themselves; leave comes exactly at the end of the grace window', async (t) => {
    const { sessions, transitions, settle, join, heard } = node(t);
    const bob = await join('bob');
    const ada = await join('ada', '/chat/a', { name: 'Ada' });
    assert.deepEqual(heard(bob), ['join {"user":"ada","info":{"name":"Ada"},"connections":1}']);
    assert.deepEqual(heard(ada), [], 'a user is not told of its own join');
    sessions.close(ada, 'client');
    await settle();
    t.mock.timers.tick(GRACE - 1);
    await settle();
    assert.deepEqual(heard(bob), [], 'not before the window ends');
    t.mock.timers.tick(1);
    await settle();
    assert.deepEqual(heard(bob), ['leave {"user":"ada","info":{"name":"Ada"}}']);
    // The baseline is read before this node's first join: the first member's join is told too.
    assert.deepEqual(transitions, ['occupied /chat/a', 'join bob /chat/a', 'join ada /chat/a', 'leave ada /chat/a']);
  });

  test('a reconnect, a second tab and a handover between tabs are not a leave and a join', async (t) => {
    const { sessions, transitions, settle, join, heard } = node(t);
    const bob = await join('bob');
    let ada = await join('ada');
    heard(bob);
    for (let i = 0; i < 5; i++) {
      sessions.close(ada, 'expired');
      await settle();
      t.mock.timers.tick(GRACE / 2);
      ada = await join('ada');
    }
    const tab = await join('ada');
    sessions.close(ada, 'client');
    await settle();
    t.mock.timers.tick(GRACE * 5);
    await settle();
    assert.deepEqual(heard(bob), []);
    assert.deepEqual(transitions, ['occupied /chat/a', 'join bob /chat/a', 'join ada /chat/a']);
    assert.ok(!tab.isClosed);
  });

  test('channels that did not opt in are not followed; a followed channel is dropped once this node has no part in it', async (t) => {
    const { sessions, events, settle, join, heard } = node(t);
    const quiet = await join('bob', '/news');
    await join('ada', '/news');
    assert.deepEqual(heard(quiet), []);
    assert.equal(events.followedCount, 0);
    const ada = await join('ada');
    assert.equal(events.followedCount, 1);
    sessions.close(ada, 'client');
    await settle();
    t.mock.timers.tick(GRACE);
    await settle();
    assert.equal(events.followedCount, 0, 'its leave told, nothing left to follow');
  });

  test('above maxMembers, subscribers get counts instead of joins and leaves', async (t) => {
    const { engine, transitions, settle, join, heard } = node(t, 2);
    const bob = await join('bob');
    await join('ada');
    assert.deepEqual(heard(bob), ['join {"user":"ada","connections":1}']);
    // A third member (on another node, say): the channel is crowded from the next read.
    await engine.join('/chat/a', presenceJoin('remote-1', principal('cy')));
    await settle();
    assert.deepEqual(heard(bob), ['count {"users":3,"connections":3}']);
    await engine.join('/chat/a', presenceJoin('remote-2', principal('di')));
    await settle();
    assert.deepEqual(heard(bob), [], 'crowded: read on the sweep only');
    t.mock.timers.tick(60_000);
    await settle();
    assert.deepEqual(heard(bob), ['count {"users":4,"connections":4}']);
    assert.ok(transitions.includes('join di /chat/a'), 'code still hears every member change');
  });

  test('a failed baseline read (engine not ready) does not make the member who joined meanwhile one that was there already', async (t) => {
    const errors: unknown[] = [];
    const { engine, transitions, settle, join } = node(t, 100, (error) => errors.push(error));
    // Ada is in /chat/b before this node follows it (another node's member, say).
    await engine.join('/chat/b', presenceJoin('remote-1', principal('ada')));
    t.mock.timers.tick(10);
    const read = engine.presence.bind(engine);
    const failed = new Set<string>();
    // The first read of each channel fails.
    engine.presence = (channel) => (failed.has(channel) ? read(channel) : (failed.add(channel), Promise.reject(new Error('engine not ready'))));
    await join('bob', '/chat/a');
    await join('bob', '/chat/b');
    assert.equal(errors.length, 2, 'both baselines failed');
    assert.deepEqual(transitions, ['occupied /chat/a', 'join bob /chat/a', 'join bob /chat/b'], 'bob joined both; ada was in /chat/b already, so it stays occupied and she does not join');
  });
});
