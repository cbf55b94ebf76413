/**
 * The long-poll cursor: every answer of `GET /sub/{channel}` names where to continue
 * (`Herald-Position` and `ETag`; JSONP: the callback's second argument), and a poll that sends it
 * back (`?since=` or `If-None-Match`) gets everything published after it — so the README's curl
 * loop loses nothing published between two polls. A pattern's cursor names the subscription kept
 * between its polls; a cursor that cannot be honoured gives one gap signal, not one per poll.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startHerald } from '../helpers/herald.js';
import { httpRequest } from '../helpers/http.js';
import type { RawResponse } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

async function publish(port: number, channel: string, data: unknown): Promise<{ id: string }> {
  const res = await httpRequest(port, { method: 'POST', path: `/pub${channel}`, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(data) });
  assert.equal(res.status, 200, res.text);
  return res.json();
}

/** The cursor an answer names; both headers must agree. */
function cursorOf(res: RawResponse): string {
  const position = res.headers['herald-position'];
  assert.equal(typeof position, 'string', `Herald-Position on a ${res.status}`);
  assert.equal(res.headers.etag, `"${position}"`);
  return position as string;
}

/** The README's loop, one turn: `curl -D - "…/sub/<channel>?since=$cursor"`, keep the items and the new cursor. */
async function pollOnce(port: number, path: string, cursor: string | undefined, short: boolean): Promise<{ items: any[]; cursor: string }> {
  const params = [short ? 'wait=0' : '', cursor === undefined ? '' : `since=${cursor}`].filter((p) => p !== '').join('&');
  const res = await httpRequest(port, { path: `${path}${params === '' ? '' : `?${params}`}` });
  assert.equal(res.status, 200, res.text);
  return { items: res.json(), cursor: cursorOf(res) };
}

describe('the long-poll cursor on one channel', () => {
  test('a loop that sends back each answer\'s cursor misses nothing published between polls, short or held', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 150 });
    const got: unknown[] = [];
    let { cursor } = await pollOnce(port, '/sub/loop', undefined, true);
    for (let turn = 0; turn < 12; turn++) {
      // Published while no poll is open: before the fix, the next poll could not ask for these.
      for (let i = 0; i < turn % 3; i++) await publish(port, '/loop', `${turn}.${i}`);
      const short = turn % 2 === 0;
      const poll = pollOnce(port, '/sub/loop', cursor, short);
      if (!short && turn % 3 === 0) {
        // …and while a poll is held.
        await waitFor('the poll to be held', () => herald.stats().heldConnects === 1);
        await publish(port, '/loop', `${turn}.held`);
      }
      const answer = await poll;
      got.push(...answer.items.map((m) => m.data));
      cursor = answer.cursor;
    }
    const expected: string[] = [];
    for (let turn = 0; turn < 12; turn++) {
      for (let i = 0; i < turn % 3; i++) expected.push(`${turn}.${i}`);
      if (turn % 2 === 1 && turn % 3 === 0) expected.push(`${turn}.held`);
    }
    assert.deepEqual(got, expected);
  });

  test('the cursor is the last id sent, else the position; nothing new on a conditional poll is 304, short or held', async (t) => {
    const { port } = await startHerald(t, { timeoutMs: 150 });
    const first = await httpRequest(port, { path: '/sub/etag?wait=0' });
    assert.deepEqual(first.json(), []);
    const cursor = cursorOf(first);
    const short = await httpRequest(port, { path: '/sub/etag?wait=0', headers: { 'If-None-Match': `"${cursor}"` } });
    assert.equal(short.status, 304);
    assert.equal(short.text, '');
    assert.equal(cursorOf(short), cursor);
    const held = await httpRequest(port, { path: '/sub/etag', headers: { 'If-None-Match': `W/"${cursor}"` } });
    assert.equal(held.status, 304, 'a held poll that times out with nothing new');
    assert.ok(held.elapsedMs >= 100, 'it was held');
    const m = await publish(port, '/etag', 'new');
    const fresh = await httpRequest(port, { path: '/sub/etag?wait=0', headers: { 'If-None-Match': `"${cursor}"` } });
    assert.equal(fresh.status, 200);
    assert.deepEqual(fresh.json().map((x: any) => x.data), ['new']);
    assert.equal(cursorOf(fresh), m.id);
    assert.equal((await httpRequest(port, { path: '/sub/etag?wait=0', headers: { 'If-None-Match': `"${m.id}"` } })).status, 304);
  });

  test('JSONP gets the cursor as the callback\'s second argument, and a JSONP loop loses nothing', async (t) => {
    const { port } = await startHerald(t);
    const answer = async (cursor: string | undefined) => {
      const res = await httpRequest(port, { path: `/sub/jp?wait=0&callback=got${cursor === undefined ? '' : `&since=${cursor}`}` });
      assert.equal(res.status, 200, 'never a 304: a script could not see it');
      const [, items, next] = /^\/\*\*\/got\((\[.*\]),("[0-9a-z]+")\);$/s.exec(res.text)!;
      return { items: JSON.parse(items!) as any[], cursor: JSON.parse(next!) as string };
    };
    let { cursor } = await answer(undefined);
    const got: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      await publish(port, '/jp', i);
      const next = await answer(cursor);
      got.push(...next.items.map((m) => m.data));
      cursor = next.cursor;
    }
    assert.deepEqual(got, [0, 1, 2, 3]);
  });

  test('a gap with nothing after it is reported once, with the next message, not at once', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 10_000 });
    const old = await publish(port, '/gone', 'old');
    assert.equal((await httpRequest(port, { method: 'DELETE', path: '/pub/gone' })).status, 204);
    const held = httpRequest(port, { path: `/sub/gone?since=${old.id}` });
    await waitFor('the poll to be held, not answered with the gap alone', () => herald.stats().heldConnects === 1);
    await publish(port, '/gone', 'next');
    const res = await held;
    assert.deepEqual(res.json()[0], { gap: true, channel: '/gone', since: old.id });
    assert.deepEqual(res.json().slice(1).map((m: any) => m.data), ['next']);
    const after = await pollOnce(port, '/sub/gone', cursorOf(res), true);
    assert.deepEqual(after.items, [], 'the cursor after a gap is honoured: no second gap');
  });

  test('a cursor the channel never gave (a pattern\'s, a future id) answers a gap, then what is published; never a wait for the future', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 10_000 });
    await publish(port, '/fc', 'before');
    const patternCursor = cursorOf(await httpRequest(port, { path: '/sub/other/*?wait=0' }));
    for (const forged of [patternCursor, 'zzzzzzzzzzzzz', 'f'.repeat(40) + 'z1']) {
      let answered = false;
      const held = httpRequest(port, { path: `/sub/fc?since=${forged}` });
      void held.then(() => (answered = true), () => (answered = true));
      await waitFor('the poll to be held or answered', () => answered || herald.stats().heldConnects === 1);
      if (answered) {
        // Cursors compare as text: a pattern's cursor (a random session id first) may sort below
        // the channel's ids, and then what history holds after it comes at once, behind the gap.
        assert.equal(forged, patternCursor, `${forged} sorts after every id: the poll must wait for the next message`);
        const early = await held;
        assert.deepEqual(early.json().map((item: any) => item.gap === true ? item : item.data), [{ gap: true, channel: '/fc', since: forged }, 'before']);
        continue;
      }
      const m = await publish(port, '/fc', forged);
      const res = await held;
      // Before the fix: `[]` at the timeout, and the same cursor again: nothing ever came.
      assert.deepEqual(res.json(), [{ gap: true, channel: '/fc', since: forged }, { id: m.id, channel: '/fc', data: forged }], forged);
      assert.equal(cursorOf(res), m.id);
    }
    const conditional = await httpRequest(port, { path: '/sub/fc?wait=0', headers: { 'If-None-Match': '"zzzzzzzzzzzzz"' } });
    assert.equal(conditional.status, 200, 'a future entity tag is no 304');
    assert.equal(conditional.json()[0].gap, true);
    assert.ok(cursorOf(conditional) < 'zzzzzzzzzzzzz');
    const history = await httpRequest(port, { path: '/history/fc?since=zzzzzzzzzzzzz' });
    assert.equal(history.json().gap, true);
  });
});

describe('the long-poll cursor on a pattern', () => {
  test('asked to resume, a pattern poll reports the gap once, holding for live messages; its cursor then loses nothing', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 10_000 });
    const seen = await publish(port, '/p/a', 'seen');
    const first = httpRequest(port, { path: `/sub/p/*?since=${seen.id}` });
    await waitFor('the poll to be held', () => herald.stats().heldConnects === 1);
    await publish(port, '/p/b', 'live');
    const answer = await first;
    assert.deepEqual(answer.json()[0], { gap: true, channel: '/p/*', since: seen.id });
    assert.deepEqual(answer.json().slice(1).map((m: any) => m.data), ['live']);
    let cursor = cursorOf(answer);
    const got: unknown[] = [];
    for (let turn = 0; turn < 6; turn++) {
      await publish(port, turn % 2 === 0 ? '/p/a' : '/p/b', `between ${turn}`);
      const short = turn % 2 === 1;
      // Held or not, what was queued since the last answer comes at once.
      const next = await pollOnce(port, '/sub/p/*', cursor, short);
      assert.ok(next.items.every((item) => item.gap === undefined), 'no second gap');
      got.push(...next.items.map((m) => m.data));
      cursor = next.cursor;
    }
    assert.deepEqual(got, [0, 1, 2, 3, 4, 5].map((turn) => `between ${turn}`));
    const idle = httpRequest(port, { path: `/sub/p/*?since=${cursor}` });
    await waitFor('an idle poll to be held', () => herald.stats().heldConnects === 1);
    await publish(port, '/p/c', 'later');
    assert.deepEqual((await idle).json().map((m: any) => m.data), ['later']);
  });

  test('a reply lost on the way is sent again to the poll that comes back with the older cursor', async (t) => {
    const { port } = await startHerald(t);
    const start = await pollOnce(port, '/sub/q/**', undefined, true);
    await publish(port, '/q/a', 1);
    const lost = await pollOnce(port, '/sub/q/**', start.cursor, true);
    assert.deepEqual(lost.items.map((m) => m.data), [1]);
    await publish(port, '/q/b/c', 2);
    const again = await pollOnce(port, '/sub/q/**', start.cursor, true);
    assert.deepEqual(again.items.map((m) => m.data), [1, 2], 'what the client never acknowledged comes again, in order');
    const acked = await pollOnce(port, '/sub/q/**', again.cursor, true);
    assert.deepEqual(acked.items, []);
    const stale = await pollOnce(port, '/sub/q/**', start.cursor, true);
    assert.equal(stale.items[0]?.gap, true, 'a cursor older than one acknowledged cannot be honoured: a gap, not a silent skip');
  });

  test('a cursor whose subscription is gone (expired, or another node\'s) gives one gap; the subscription lingers only as a session does', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 10_000, maxIntervalMs: 200 });
    const start = await pollOnce(port, '/sub/r/*', undefined, true);
    assert.equal(herald.sessionCount, 1, 'kept between polls');
    await waitFor('the unpolled subscription to expire', () => herald.sessionCount === 0);
    await publish(port, '/r/a', 'while nobody listened');
    const after = await pollOnce(port, '/sub/r/*', start.cursor, true);
    assert.deepEqual(after.items, [{ gap: true, channel: '/r/*', since: start.cursor }]);
    const next = await pollOnce(port, '/sub/r/*', after.cursor, true);
    assert.deepEqual(next.items, []);
    const forged = await pollOnce(port, '/sub/r/*', `${'0'.repeat(40)}z0`, true);
    assert.equal(forged.items[0].gap, true);
  });
});
