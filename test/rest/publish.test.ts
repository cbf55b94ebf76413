import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { httpRequest } from '../helpers/http.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';

const KEY = 'k'.repeat(8) + '-secret-key-1234';

function pub(port: number, channel: string, body: string, headers: Record<string, string> = {}, method = 'POST') {
  return httpRequest(port, { method, path: `/pub${channel}`, headers: { Authorization: `Bearer ${KEY}`, ...headers }, body });
}

describe('POST /pub/{channel}', () => {
  test('publishes JSON or text, answers id, channel and subscribers, and reaches Bayeux subscribers', async (t) => {
    const { port } = await startHerald(t, { publishKey: KEY });
    const sub = new RawBayeux(port);
    await sub.open();
    await sub.subscribe('/chat/**');
    const json = await pub(port, '/chat/room1', JSON.stringify({ text: 'hi' }), { 'Content-Type': 'application/json' });
    assert.equal(json.status, 200);
    const reply = json.json();
    assert.match(reply.id, /^[0-9a-z]{13}$/);
    assert.deepEqual({ ...reply, id: undefined }, { id: undefined, channel: '/chat/room1', subscribers: 1 });
    const text = await pub(port, '/chat/room2', 'plain ✓ text', { 'Content-Type': 'text/plain; charset=utf-8' });
    assert.ok(text.json().id > reply.id);
    const got = (await sub.connect({ advice: { timeout: 0 } })).json().slice(1);
    assert.deepEqual(got, [
      { channel: '/chat/room1', data: { text: 'hi' } },
      { channel: '/chat/room2', data: 'plain ✓ text' },
    ]);
  });

  test('carries a 64 KiB payload and unicode intact', async (t) => {
    const { port, herald } = await startHerald(t, { publishKey: KEY });
    const data = { big: 'x'.repeat(64 * 1024), unicode: 'héllo 世界 \u2028 🚀' };
    const res = await pub(port, '/big', JSON.stringify(data), { 'Content-Type': 'application/json' });
    assert.equal(res.status, 200);
    const history = await httpRequest(port, { path: '/history/big' });
    assert.deepEqual(history.json().messages[0].data, data);
    assert.equal(herald.sessionCount, 0);
  });

  test('refuses a missing key with 401 and a wrong one with 403', async (t) => {
    const { port } = await startHerald(t, { publishKey: KEY });
    const missing = await httpRequest(port, { method: 'POST', path: '/pub/a', body: 'x' });
    assert.equal(missing.status, 401);
    assert.equal(missing.headers['www-authenticate'], 'Bearer');
    assert.match(missing.json().error, /missing API key/);
    const wrong = await httpRequest(port, { method: 'POST', path: '/pub/a', headers: { Authorization: 'Bearer not-the-key' }, body: 'x' });
    assert.equal(wrong.status, 403);
    assert.match(wrong.json().error, /wrong API key/);
    const shorter = await httpRequest(port, { method: 'POST', path: '/pub/a', headers: { Authorization: `Bearer ${KEY.slice(0, -1)}` }, body: 'x' });
    assert.equal(shorter.status, 403);
  });

  test('without a key, accepts loopback clients only (and the test client is one)', async (t) => {
    const { port } = await startHerald(t);
    assert.equal((await httpRequest(port, { method: 'POST', path: '/pub/open', body: 'x' })).status, 200);
    // A page that reached loopback by DNS rebinding still names its own host.
    const rebound = await httpRequest(port, { method: 'POST', path: '/pub/open', headers: { Host: `evil.example:${port}` }, body: 'x' });
    assert.equal(rebound.status, 403);
  });

  test('refuses a body nested too deeply to send on, and keeps serving', async (t) => {
    const { port } = await startHerald(t, { publishKey: KEY });
    const sub = new RawBayeux(port);
    await sub.open();
    await sub.subscribe('/deep');
    const depth = 200_000;
    const res = await pub(port, '/deep', '['.repeat(depth) + ']'.repeat(depth), { 'Content-Type': 'application/json' });
    assert.equal(res.status, 400);
    assert.match(res.json().error, /cannot be serialised/);
    assert.equal((await pub(port, '/deep', '"ok"', { 'Content-Type': 'application/json' })).status, 200);
    assert.deepEqual((await sub.connect({ advice: { timeout: 0 } })).json().slice(1), [{ channel: '/deep', data: 'ok' }]);
  });

  test('names every bad request', async (t) => {
    const { port } = await startHerald(t, { publishKey: KEY, maxBodyBytes: 1024 });
    const cases: [Promise<any>, number, RegExp][] = [
      [pub(port, '/a/*', 'x'), 400, /is a pattern/],
      [pub(port, '/meta/x', 'x'), 403, /meta channels are not open/],
      [pub(port, '/service/x', 'x'), 403, /service channels are not open/],
      [pub(port, '/a//b', 'x'), 400, /invalid channel/],
      [pub(port, '/a%ZZ', 'x'), 400, /percent-encoding/],
      [pub(port, '/a', ''), 400, /empty body/],
      [pub(port, '/a', '{"broken', { 'Content-Type': 'application/json' }), 400, /malformed JSON/],
      [pub(port, '/a', 'x'.repeat(2000)), 413, /exceeds 1024 bytes/],
      [pub(port, '/a', 'x', {}, 'PUT'), 405, /POST publishes, DELETE drops history/],
      // Before: taken as text and published as it came (a gzip body as mojibake).
      [pub(port, '/a', '\x1f\x8b\x08\x00', { 'Content-Type': 'text/plain', 'Content-Encoding': 'gzip' }), 415, /Content-Encoding "gzip" is not supported/],
      [pub(port, '/' + 'a'.repeat(1100), 'x'), 400, /at most 1024 characters, this one has 1101/],
    ];
    for (const [pending, status, message] of cases) {
      const res = await pending;
      assert.equal(res.status, status, res.text);
      assert.match(res.json().error, message);
    }
  });

  test('DELETE drops the channel history', async (t) => {
    const { port } = await startHerald(t, { publishKey: KEY });
    const first = (await pub(port, '/h', '1')).json();
    await pub(port, '/h', '2');
    const deleted = await pub(port, '/h', '', {}, 'DELETE');
    assert.equal(deleted.status, 204);
    const history = (await httpRequest(port, { path: `/history/h?since=${first.id}` })).json();
    assert.deepEqual(history.messages, []);
    assert.equal(history.gap, true);
    assert.equal((await httpRequest(port, { method: 'DELETE', path: '/pub/h' })).status, 401, 'needs the key too');
  });
});

describe('GET /history/{channel}', () => {
  test('returns stored messages after an id, with a limit, and signals gaps', async (t) => {
    const { port } = await startHerald(t, { historySize: 3 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await httpRequest(port, { method: 'POST', path: '/pub/feed', headers: { 'Content-Type': 'application/json' }, body: String(i) })).json().id);
    const all = (await httpRequest(port, { path: '/history/feed' })).json();
    assert.deepEqual(all.messages.map((m: any) => m.data), [2, 3, 4]);
    assert.equal(all.channel, '/feed');
    assert.ok(all.messages.every((m: any) => typeof m.publishedAt === 'number' && m.channel === '/feed'));
    const after = (await httpRequest(port, { path: `/history/feed?since=${ids[2]}&limit=1` })).json();
    assert.deepEqual(after.messages.map((m: any) => m.data), [3]);
    assert.equal(after.gap, false);
    const late = (await httpRequest(port, { path: `/history/feed?since=${ids[0]}` })).json();
    assert.equal(late.gap, true, 'message 1 was evicted');
    for (const [query, error] of [['limit=0', /limit must be/], ['limit=abc', /limit must be/], ['since=%20x', /since must be/]] as const) {
      const res = await httpRequest(port, { path: `/history/feed?${query}` });
      assert.equal(res.status, 400);
      assert.match(res.json().error, error);
    }
    assert.equal((await httpRequest(port, { path: '/history/a/*' })).status, 400);
  });
});
