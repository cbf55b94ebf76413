/**
 * The contract every Engine keeps. Memory and Redis engines both run it:
 * `runEngineContract('MemoryEngine', { make: (historySize) => new MemoryEngine({ historySize }) })`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Engine } from '../../src/core/engine.js';
import type { Message } from '../../src/core/message.js';
import { waitFor } from '../helpers/wait.js';

export interface ContractEngines {
  /** An engine that keeps at least `historySize` messages per channel. */
  make(historySize: number): Engine | Promise<Engine>;
}

export function runEngineContract(name: string, engines: ContractEngines): void {
  describe(`Engine contract: ${name}`, () => {
    test('gives every message a strictly increasing id per channel', async (t) => {
      const engine = await engines.make(0);
      t.after(() => engine.close());
      const ids: string[] = [];
      for (let i = 0; i < 500; i++) ids.push((await engine.publish({ channel: '/a', data: i })).id);
      for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, `${ids[i]} > ${ids[i - 1]}`);
      assert.ok(ids.every((id) => /^[0-9a-z]+$/.test(id)), 'ids are alphanumeric');
    });

    test('a position is a resume point: history since it holds exactly what came after', async (t) => {
      const engine = await engines.make(10);
      t.after(() => engine.close());
      const empty = await engine.position('/p');
      await engine.publish({ channel: '/p', data: 1 });
      const afterOne = await engine.position('/p');
      await engine.publish({ channel: '/p', data: 2 });
      assert.ok(afterOne >= empty);
      assert.deepEqual((await engine.history('/p', { since: empty })).messages.map((m) => m.data), [1, 2]);
      assert.deepEqual((await engine.history('/p', { since: afterOne })).messages.map((m) => m.data), [2]);
      assert.equal((await engine.history('/p', { since: afterOne })).gap, false);
    });

    test('hands messages to the listener only for patterns it has interest in, in order', async (t) => {
      const engine = await engines.make(0);
      t.after(() => engine.close());
      const seen: Message[] = [];
      engine.onMessage((m) => seen.push(m));
      await engine.publish({ channel: '/x/y', data: 'before' });
      await engine.subscribe('/x/**');
      for (let i = 0; i < 10; i++) await engine.publish({ channel: '/x/y', data: i });
      await engine.publish({ channel: '/other', data: 'not ours' });
      await engine.unsubscribe('/x/**');
      await engine.publish({ channel: '/x/y', data: 'after' });
      assert.deepEqual(seen.map((m) => m.data), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.ok(seen.every((m) => m.channel === '/x/y'));
    });

    test('a subscribe settles once the subscription is live, a second one of the same pattern too; nothing lost, no gap', async (t) => {
      const engine = await engines.make(0);
      t.after(() => engine.close());
      const seen: unknown[] = [];
      const gaps: string[] = [];
      engine.onMessage((m) => seen.push(m.data));
      engine.onGap((channel) => gaps.push(channel));
      const first = engine.subscribe('/live/*');
      await engine.subscribe('/live/*');
      await engine.publish({ channel: '/live/x', data: 1 });
      await first;
      assert.deepEqual(seen, [1]);
      assert.deepEqual(gaps, []);
    });

    test('resolves publish after the local listener has the message', async (t) => {
      const engine = await engines.make(0);
      t.after(() => engine.close());
      let got: Message | undefined;
      engine.onMessage((m) => (got = m));
      await engine.subscribe('/now');
      const published = await engine.publish({ channel: '/now', data: { deep: [1, 2] } });
      assert.deepEqual(got, published);
    });

    test('keeps history and reads everything after an id', async (t) => {
      const engine = await engines.make(5);
      t.after(() => engine.close());
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await engine.publish({ channel: '/h', data: i })).id);
      const all = await engine.history('/h');
      assert.deepEqual(all.messages.map((m) => m.data), [0, 1, 2]);
      assert.equal(all.gap, false);
      const after = await engine.history('/h', { since: ids[0] });
      assert.deepEqual(after.messages.map((m) => m.data), [1, 2]);
      assert.equal(after.gap, false);
      const limited = await engine.history('/h', { limit: 2 });
      assert.deepEqual(limited.messages.map((m) => m.data), [0, 1]);
      assert.deepEqual((await engine.history('/h', { since: ids[2] })).messages, []);
      assert.deepEqual(await engine.history('/never'), { messages: [], gap: false });
      // A channel with nothing kept: from a position given for it, nothing was missed (a long-poll
      // cursor on a quiet channel must not report a gap at every poll); from before the engine
      // began, nothing can be proved.
      assert.equal((await engine.history('/never', { since: await engine.position('/never') })).gap, false, 'nothing published since its position');
      assert.equal((await engine.history('/never', { since: '0000000000000' })).gap, true, 'from before the engine began, nothing kept proves nothing');
    });

    test('a resume from an id no engine gave yet (forged, another cluster\'s, a clock ahead) is a gap, not a wait for the future', async (t) => {
      const engine = await engines.make(5);
      t.after(() => engine.close());
      const quiet = await engine.publish({ channel: '/quiet', data: 0 });
      const busy = await engine.publish({ channel: '/busy', data: 0 });
      for (const channel of ['/quiet', '/empty']) {
        for (const since of ['zzzzzzzzzzzzz', 'zzzzzzzzzzzzzzzzzz', '1zzzzzzzzzzzz', 'deadbeefcafe0123z1']) {
          assert.equal((await engine.history(channel, { since })).gap, true, `${channel} since ${since}`);
        }
      }
      // An id another channel gave (the newest in the engine) is no gap: later ids sort after it.
      assert.equal((await engine.history('/quiet', { since: busy.id })).gap, false);
      assert.equal((await engine.history('/quiet', { since: quiet.id })).gap, false);
      assert.equal((await engine.history('/empty', { since: await engine.position('/empty') })).gap, false);
    });

    test('deleting a channel\'s history empties it and signals a gap to readers from before', async (t) => {
      const engine = await engines.make(10);
      t.after(() => engine.close());
      const first = await engine.publish({ channel: '/d', data: 1 });
      await engine.publish({ channel: '/d', data: 2 });
      await engine.publish({ channel: '/other', data: 3 });
      await engine.deleteHistory('/d');
      assert.deepEqual((await engine.history('/d')).messages, []);
      assert.equal((await engine.history('/d', { since: first.id })).gap, true);
      assert.equal((await engine.history('/other')).messages.length, 1, 'other channels keep theirs');
      const after = await engine.publish({ channel: '/d', data: 4 });
      assert.deepEqual((await engine.history('/d', { since: after.id })).messages, []);
      await engine.deleteHistory('/never-published');
    });

    test('signals a gap when the requested id was already evicted', async (t) => {
      const engine = await engines.make(2);
      t.after(() => engine.close());
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await engine.publish({ channel: '/g', data: i })).id);
      const late = await engine.history('/g', { since: ids[0] });
      assert.equal(late.gap, true, 'messages 1 and 2 are gone');
      assert.deepEqual(late.messages.map((m) => m.data), [3, 4]);
      const justInTime = await engine.history('/g', { since: ids[2] });
      assert.equal(justInTime.gap, false);
      assert.deepEqual(justInTime.messages.map((m) => m.data), [3, 4]);
    });

    test('lists who subscribes to a channel, one entry per session with its user and info, until it leaves; every change is announced', async (t) => {
      const engine = await engines.make(0);
      t.after(() => engine.close());
      const announced: string[] = [];
      engine.onPresence((channel) => announced.push(channel));
      await engine.join('/room', { session: 's1', user: 'alice', info: { name: 'Alice' } });
      await engine.join('/room', { session: 's1', user: 'alice', info: { name: 'Alice' } });
      await engine.join('/room', { session: 's2', user: 'alice' });
      await engine.join('/room', { session: 's3', user: 's3', anonymous: true });
      await engine.join('/room/**', { session: 's4', user: 'carol' });
      // An anonymous page's handle (the demo's chat name) is kept as its info.
      await engine.join('/room', { session: 's5', user: 's5', anonymous: true, info: { name: 'guest' } });
      const entries = await engine.presence('/room');
      assert.deepEqual(entries.map((e) => `${e.session}:${e.user}`).sort(), ['s1:alice', 's2:alice', 's3:s3', 's5:s5']);
      assert.deepEqual(
        entries.filter((e) => e.anonymous === true).map((e) => [e.session, e.info]).sort(),
        [
          ['s3', undefined],
          ['s5', { name: 'guest' }],
        ],
      );
      assert.deepEqual(entries.find((e) => e.session === 's1')!.info, { name: 'Alice' });
      assert.equal(entries.find((e) => e.session === 's3')!.anonymous, true);
      assert.ok(entries.every((e) => typeof e.node === 'string' && e.node.length > 0 && Number.isFinite(e.joinedAt)));
      await engine.leave('/room', 's1');
      await engine.leave('/room', 'nobody');
      await engine.leave('/room', 's5');
      assert.deepEqual((await engine.presence('/room')).map((e) => e.session).sort(), ['s2', 's3']);
      assert.deepEqual((await engine.presence('/room/**')).map((e) => e.user), ['carol']);
      assert.deepEqual(await engine.presence('/empty'), []);
      // Each real change once (Redis announces through pub/sub: it arrives a moment later).
      await waitFor('every change is announced', () => announced.length >= 7);
      assert.deepEqual([...announced].sort(), ['/room', '/room', '/room', '/room', '/room', '/room', '/room/**']);
    });

    test('an idempotency key stores a message once within its window: retries, even at the same moment, get the first id', async (t) => {
      const engine = await engines.make(10);
      t.after(() => engine.close());
      const key = (name: string) => ({ key: name, windowMs: 60_000 });
      const first = await engine.publish({ channel: '/i', data: 1, idempotency: key('k1') });
      assert.equal(first.duplicate, undefined);
      const again = await engine.publish({ channel: '/i', data: 1, idempotency: key('k1') });
      assert.deepEqual([again.id, again.channel, again.duplicate], [first.id, '/i', true]);
      // The key names the first message wherever the retry is sent: its channel comes back.
      const elsewhere = await engine.publish({ channel: '/other', data: 1, idempotency: key('k1') });
      assert.deepEqual([elsewhere.id, elsewhere.channel, elsewhere.duplicate], [first.id, '/i', true]);
      const racing = await Promise.all([1, 2, 3, 4, 5].map(() => engine.publish({ channel: '/i', data: 2, idempotency: key('k2') })));
      assert.equal(racing.filter((message) => message.duplicate !== true).length, 1, 'one of five at once is stored');
      assert.equal(new Set(racing.map((message) => message.id)).size, 1, 'all answer its id');
      await engine.publish({ channel: '/i', data: 3 });
      assert.deepEqual((await engine.history('/i')).messages.map((m) => m.data), [1, 2, 3]);
      assert.deepEqual(await engine.history('/other'), { messages: [], gap: false });
    });

    test('an idempotency key is forgotten when its window ends: the same key then publishes anew', async (t) => {
      const engine = await engines.make(10);
      t.after(() => engine.close());
      const first = await engine.publish({ channel: '/w', data: 'first', idempotency: { key: 'short', windowMs: 100 } });
      assert.equal((await engine.publish({ channel: '/w', data: 'first', idempotency: { key: 'short', windowMs: 100 } })).duplicate, true);
      await waitFor('the window ends', () => Date.now() - first.publishedAt > 150);
      const later = await engine.publish({ channel: '/w', data: 'later', idempotency: { key: 'short', windowMs: 100 } });
      assert.equal(later.duplicate, undefined);
      assert.ok(later.id > first.id);
    });

    test('an outbox stores a claimed event once, even when added at the same moment; the claim lapses; unclaimed events are all stored', async (t) => {
      const engine = await engines.make(0);
      t.after(() => engine.close());
      const outbox = engine.outbox('contract', 100);
      const adds = await Promise.all(Array.from({ length: 5 }, (_, i) => outbox.add(`{"n":${i}}`, { key: 'x', ttlMs: 100 })));
      assert.equal(adds.filter(Boolean).length, 1);
      assert.equal(await outbox.add('{"n":"other"}', { key: 'other', ttlMs: 100 }), true, 'another key is another claim');
      assert.equal(await outbox.add('{"n":"free"}'), true);
      assert.equal(await outbox.add('{"n":"free"}'), true);
      const claimedAt = Date.now();
      await waitFor('the claim lapses', () => Date.now() - claimedAt > 150);
      assert.equal(await outbox.add('{"n":"again"}', { key: 'x', ttlMs: 100 }), true);
      const read = await outbox.read('reader', 10);
      assert.deepEqual(read.entries.map((entry) => JSON.parse(entry.event).n).slice(1), ['other', 'free', 'free', 'again']);
      assert.deepEqual(read.entries.map((entry) => entry.seq), [1, 2, 3, 4, 5]);
      assert.deepEqual([read.skipped, read.reset], [0, false]);
    });

    test('an outbox reader reads from its cursor, which moves only forward; past its length the oldest go, and a reader behind is told how many it missed', async (t) => {
      const engine = await engines.make(0);
      t.after(() => engine.close());
      const outbox = engine.outbox('bounded', 3);
      for (let n = 1; n <= 3; n++) await outbox.add(String(n));
      assert.equal(await outbox.lease(1000), true);
      const first = await outbox.read('slow', 2);
      assert.deepEqual(first.entries.map((entry) => entry.event), ['1', '2']);
      assert.equal(await outbox.ack('slow', first.entries[1]!), true);
      assert.equal(await outbox.ack('slow', first.entries[0]!), true, 'an older ack is no error…');
      assert.deepEqual((await outbox.read('slow', 10)).entries.map((entry) => entry.event), ['3'], '…and moves nothing back');
      assert.deepEqual((await outbox.read('fast', 10)).entries.map((entry) => entry.event), ['1', '2', '3'], 'each reader its own cursor');
      for (let n = 4; n <= 7; n++) await outbox.add(String(n));
      const behind = await outbox.read('slow', 10);
      assert.deepEqual(behind.entries.map((entry) => entry.event), ['5', '6', '7'], 'three kept, the oldest went');
      assert.equal(behind.skipped, 2, '3 and 4 went before the reader took them');
      const fresh = await outbox.read('new', 10);
      assert.deepEqual([fresh.entries.length, fresh.skipped], [3, 0], 'a reader without a cursor starts from what is kept, missing nothing');
    });

    test('users: online at the first connection, to one caller; leaving at the last; offline once its window passed, to one sweeper', async (t) => {
      const engine = await engines.make(0);
      t.after(() => engine.close());
      assert.deepEqual(await Promise.all([engine.userConnected('ada'), engine.userConnected('ada')]), [true, false]);
      assert.equal(await engine.userDisconnected('ada'), false, 'a connection is left');
      assert.equal(await engine.userDisconnected('ada'), true, 'the last one');
      assert.deepEqual(await engine.sweepUsers(60_000), { offline: [], online: [] }, 'within its window');
      assert.equal(await engine.userConnected('ada'), false, 'back within the window: not online again');
      assert.equal(await engine.userDisconnected('ada'), true);
      const sweeps = await Promise.all([engine.sweepUsers(0), engine.sweepUsers(0)]);
      assert.deepEqual(sweeps.flatMap((sweep) => sweep.offline), ['ada'], 'offline once');
      assert.equal(await engine.userConnected('ada'), true, 'online again');
      assert.equal(await engine.userDisconnected('bob'), false, 'never connected');
    });

    test('one outbox handle holds the lease at a time (a node each): the others can neither take it nor move a cursor; given up or lapsed, another takes it', async (t) => {
      const engine = await engines.make(0);
      t.after(() => engine.close());
      const [first, second] = [engine.outbox('leased', 10), engine.outbox('leased', 10)];
      await first.add('"e1"');
      assert.equal(await first.lease(200), true);
      assert.equal(await second.lease(200), false);
      assert.equal(await first.lease(200), true, 'renewed by its holder');
      const [entry] = (await second.read('r', 10)).entries;
      assert.equal(await second.ack('r', entry!), false, 'not the holder: the cursor stays');
      assert.equal((await first.read('r', 10)).entries.length, 1);
      assert.equal(await first.ack('r', entry!), true);
      assert.equal((await second.read('r', 10)).entries.length, 0, 'the cursor is shared: whoever holds the lease next resumes from it');
      await first.release();
      assert.equal(await second.lease(200), true, 'given up: taken at once');
      await second.release();
      assert.equal(await first.lease(100), true);
      const takenAt = Date.now();
      await waitFor('the lease lapses', async () => Date.now() - takenAt > 100 && (await second.lease(1000)));
      assert.equal(await first.ack('r', entry!), false, 'a holder whose lease lapsed can no longer move a cursor');
    });

    test('reports itself healthy while it can serve, and refuses publishes once closed', async () => {
      const engine = await engines.make(0);
      assert.deepEqual(engine.health(), { healthy: true });
      await engine.close();
      assert.equal(engine.health().healthy, false);
      await assert.rejects(engine.publish({ channel: '/a', data: 1 }), { code: 'HERALD_ERR_CLOSED' });
    });
  });
}
