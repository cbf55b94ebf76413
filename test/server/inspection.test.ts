/**
 * Inspection on one node, through each way in: `GET /admin/channels`, `/admin/users/{sub}/sessions`
 * and `/admin/nodes` (and the dashboard's links to them), `herald.channels()` / `userSessions()` /
 * `nodes()`, and `herald channels|sessions|nodes`. Real server, raw Bayeux long-polls and REST
 * streams, real CLI processes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { runCli } from '../helpers/cli.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const KEY = 'inspection-test-key';
const BACKEND = { Authorization: `Bearer ${KEY}` };
const cli = (args: string[]) => runCli(args, KEY);
type Hookable = { after(fn: () => unknown): void };

function token(sub: string): Promise<string> {
  return new SignJWT({ subscribe: ['/**'], publish: ['/**'] }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('1h').sign(Buffer.from(SECRET));
}

const get = async (port: number, path: string, headers: Record<string, string> = BACKEND) => httpRequest(port, { path, headers });

/**
 * alice: a Bayeux long-poll on /chat/1 and /chat/* and an SSE stream on /chat/1; bob: a long-poll
 * on /news. So /chat/1 has 2 subscribers, /chat/* and /news 1 each.
 */
async function populate(t: Hookable, options: Record<string, unknown> = {}) {
  const running = await startHerald(t, { jwtSecret: SECRET, publishKey: KEY, ...options });
  const { port, herald } = running;
  const alice = new RawBayeux(port);
  assert.equal((await alice.handshake({ ext: { auth: { token: await token('alice') } } })).successful, true);
  await alice.connect({ advice: { timeout: 0 } });
  assert.equal((await alice.subscribe(['/chat/1', '/chat/*'])).successful, true);
  const bob = new RawBayeux(port);
  assert.equal((await bob.handshake({ ext: { auth: { token: await token('bob') } } })).successful, true);
  await bob.connect({ advice: { timeout: 0 } });
  assert.equal((await bob.subscribe('/news')).successful, true);
  await openStream(port, `/sub/chat/1?token=${await token('alice')}`, { Accept: 'text/event-stream' }, t);
  await waitFor('three sessions', () => herald.sessionCount === 3);
  return running;
}

const ALL = [
  { channel: '/chat/*', subscribers: 1 },
  { channel: '/chat/1', subscribers: 2 },
  { channel: '/news', subscribers: 1 },
];

describe('inspection over HTTP', () => {
  test('GET /admin/channels lists the channels and patterns subscribed to, with counts, inside a pattern', async (t) => {
    const { port } = await populate(t);
    const all = await get(port, '/admin/channels');
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(all.json(), { channels: ALL, unanswered: [] });
    assert.deepEqual((await get(port, '/admin/channels?pattern=/chat/**')).json().channels, ALL.slice(0, 2));
    assert.deepEqual((await get(port, '/admin/channels?pattern=/chat/1')).json().channels, [ALL[1]]);
    assert.deepEqual((await get(port, '/admin/channels?pattern=/nothing/**')).json().channels, []);
  });

  test('pages: limit at a time, each page\'s cursor brings the next, the last has none', async (t) => {
    const { port } = await populate(t);
    const seen: unknown[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = (await get(port, `/admin/channels?limit=1${cursor === undefined ? '' : `&cursor=${cursor}`}`)).json();
      assert.ok(page.channels.length <= 1);
      seen.push(...page.channels);
      cursor = page.cursor;
      pages++;
    } while (cursor !== undefined && pages < 10);
    assert.deepEqual(seen, ALL);
    const two = (await get(port, '/admin/channels?limit=2')).json();
    assert.deepEqual(two.channels, ALL.slice(0, 2));
    assert.deepEqual((await get(port, `/admin/channels?limit=2&cursor=${two.cursor}`)).json().channels, ALL.slice(2));
  });

  test("GET /admin/users/{sub}/sessions: the user's sessions with node, transport, since and subscriptions; the address only when allowed", async (t) => {
    const { port, herald } = await populate(t);
    const answer = (await get(port, '/admin/users/alice/sessions')).json();
    assert.equal(answer.user, 'alice');
    assert.deepEqual(answer.unanswered, []);
    const sessions = answer.sessions as { id: string; node: string; transport: string; since: number; subscriptions: string[]; address?: string }[];
    assert.deepEqual(sessions.map((session) => session.transport).sort(), ['long-polling', 'rest-sse']);
    const bayeux = sessions.find((session) => session.transport === 'long-polling')!;
    assert.deepEqual(bayeux.subscriptions.sort(), ['/chat/*', '/chat/1']);
    const node = (await herald.nodes()).nodes[0]!.node;
    assert.ok(sessions.every((session) => session.node === node));
    assert.ok(sessions.every((session) => Math.abs(Date.now() - session.since) < 60_000 && session.address === undefined && /^[\w-]{22}$/.test(session.id)));
    assert.deepEqual((await get(port, '/admin/users/nobody/sessions')).json(), { user: 'nobody', sessions: [], unanswered: [] });
    // The id is the one /admin/disconnect takes.
    const kicked = await httpRequest(port, { method: 'POST', path: '/admin/disconnect', headers: { ...BACKEND, 'Content-Type': 'application/json' }, body: JSON.stringify({ session: bayeux.id }) });
    assert.deepEqual(kicked.json(), { ok: true, closedHere: 1 });
  });

  test('with --inspect-addresses, sessions show their client address; a sub needing encoding works', async (t) => {
    const { port } = await startHerald(t, { jwtSecret: SECRET, publishKey: KEY, inspectAddresses: true });
    await openStream(port, `/sub/x?token=${await token('user/with space')}`, { Accept: 'text/event-stream' }, t);
    await waitFor('the stream is a session', async () => (await get(port, `/admin/users/${encodeURIComponent('user/with space')}/sessions`)).json().sessions.length === 1);
    const [session] = (await get(port, `/admin/users/${encodeURIComponent('user/with space')}/sessions`)).json().sessions;
    assert.equal(session.address, '127.0.0.1');
    assert.equal(session.transport, 'rest-sse');
  });

  test('GET /admin/nodes: the node with its sessions, subscriptions, sessions and connections by transport', async (t) => {
    const { port } = await populate(t);
    const { nodes, unanswered } = (await get(port, '/admin/nodes')).json();
    assert.deepEqual(unanswered, []);
    assert.equal(nodes.length, 1);
    const [node] = nodes;
    assert.equal(typeof node.node, 'string');
    assert.deepEqual([node.sessions, node.subscriptions], [3, 4]);
    assert.deepEqual(node.transports, { 'long-polling': 2, 'rest-sse': 1 });
    assert.equal(node.connections['http-stream'], 1);
    assert.ok(node.connections.tcp >= 2);
  });

  test('refusals are 4xx naming the problem', async (t) => {
    const { port } = await populate(t);
    const cases: [string, Record<string, string> | undefined, number, RegExp, string?][] = [
      ['/admin/channels?pattern=nope', BACKEND, 400, /pattern "nope" is not a channel or pattern/],
      ['/admin/channels?limit=0', BACKEND, 400, /limit must be a whole number from 1 to 1000/],
      ['/admin/channels?limit=1001', BACKEND, 400, /limit must be/],
      ['/admin/channels?cursor=%2F%2F', BACKEND, 400, /cursor is not one this API gave/],
      ['/admin/channels?cursor=bm9wZQ', BACKEND, 400, /cursor is not one this API gave/],
      ['/admin/channels?patern=/a', BACKEND, 400, /unknown parameter "patern"/],
      ['/admin/users/alice', BACKEND, 404, /use \/admin\/users\/\{sub\}\/sessions/],
      ['/admin/users//sessions', BACKEND, 404, /no such path/],
      ['/admin/users/%E0%A4%A/sessions', BACKEND, 400, /not valid URL encoding/],
      [`/admin/users/${'x'.repeat(300)}/sessions`, BACKEND, 400, /at most 256/],
      ['/admin/nodes', {}, 401, /missing API key/],
      ['/admin/nodes', { Authorization: 'Bearer wrong' }, 403, /wrong API key/],
      ['/admin/channels', BACKEND, 405, /use GET/, 'POST'],
    ];
    const userToken = await token('alice');
    cases.push(['/admin/channels', { Authorization: `Bearer ${userToken}` }, 403, /only the publish key may do this/]);
    for (const [path, headers, status, error, method] of cases) {
      const answer = await httpRequest(port, { method: method ?? 'GET', path, headers: { ...headers } });
      assert.equal(answer.status, status, `${method ?? 'GET'} ${path}: ${answer.text}`);
      assert.match(answer.json().error, error, path);
    }
  });

  test('the dashboard links to them, and serves them to the admin key', async (t) => {
    const { port } = await populate(t, { adminKey: 'dashboard-admin-key' });
    const page = await get(port, '/dashboard', { Authorization: 'Bearer dashboard-admin-key' });
    for (const link of ['/dashboard/nodes', '/dashboard/channels']) assert.ok(page.text.includes(`href="${link}"`), link);
    const admin = { Authorization: 'Bearer dashboard-admin-key' };
    assert.deepEqual((await get(port, '/dashboard/channels?pattern=/news', admin)).json().channels, [ALL[2]]);
    assert.equal((await get(port, '/dashboard/users/bob/sessions', admin)).json().sessions.length, 1);
    assert.equal((await get(port, '/dashboard/nodes', admin)).json().nodes[0].sessions, 3);
    assert.equal((await get(port, '/dashboard/nodes', {})).status, 401, 'not without the admin key');
    assert.equal((await get(port, '/dashboard/nodes', BACKEND)).status, 403, 'the publish key is not the admin key');
  });
});

describe('inspection from code and the CLI', () => {
  test('herald.channels(), userSessions(), nodes() answer as HTTP does and refuse bad requests', async (t) => {
    const { herald } = await populate(t);
    assert.deepEqual(await herald.channels(), { channels: ALL, unanswered: [] });
    const first = await herald.channels({ pattern: '/chat/**', limit: 1 });
    assert.deepEqual(first.channels, [ALL[0]]);
    assert.deepEqual((await herald.channels({ pattern: '/chat/**', cursor: first.cursor })).channels, [ALL[1]]);
    assert.equal((await herald.userSessions('bob')).sessions[0]!.transport, 'long-polling');
    assert.equal((await herald.nodes()).nodes[0]!.subscriptions, 4);
    await assert.rejects(herald.channels({ limit: 0 }), { code: 'HERALD_ERR_INVALID_REQUEST', message: /limit/ });
    await assert.rejects(herald.channels({ pattern: 'x' }), { code: 'HERALD_ERR_INVALID_REQUEST' });
    await assert.rejects(herald.userSessions(''), { code: 'HERALD_ERR_INVALID_REQUEST' });
  });

  test('herald channels, herald sessions, herald nodes', async (t) => {
    const { url } = await populate(t);
    const channels = await cli(['channels', '--pattern', '/chat/**', '--limit', '1', '--url', url]);
    assert.equal(channels.code, 0, channels.stderr);
    const page = JSON.parse(channels.stdout);
    assert.deepEqual(page.channels, [ALL[0]]);
    const next = await cli(['channels', '--pattern', '/chat/**', '--cursor', page.cursor, '--url', url]);
    assert.deepEqual(JSON.parse(next.stdout).channels, [ALL[1]]);
    const sessions = await cli(['sessions', 'alice', '--url', url]);
    assert.equal(JSON.parse(sessions.stdout).sessions.length, 2);
    const nodes = await cli(['nodes', '--url', url]);
    assert.equal(JSON.parse(nodes.stdout).nodes[0].sessions, 3);
    const refused = await cli(['channels', '--limit', 'many', '--url', url]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /HTTP 400.*limit must be/);
  });
});
