import assert from 'node:assert/strict';
import { test } from 'node:test';
import { httpRequest } from '../helpers/http.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { SignJWT } from 'jose';
import { MAX_PRESENCE_INFO_BYTES } from '../../src/core/presence.js';

const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const token = (sub: string, info: unknown) =>
  new SignJWT({ info, subscribe: ['/room'] }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('1h').sign(Buffer.from(SECRET));

test('GET /presence/{channel} lists anonymous sessions by public id, until they leave', async (t) => {
  const { port } = await startHerald(t);
  const [alice, bob] = [new RawBayeux(port), new RawBayeux(port)];
  await alice.open();
  await bob.open();
  assert.equal((await alice.subscribe('/room')).successful, true);
  assert.equal((await bob.subscribe(['/room', '/room/**'])).successful, true);
  const room = (await httpRequest(port, { path: '/presence/room' })).json();
  assert.equal(room.channel, '/room');
  assert.equal(room.users, 2);
  assert.equal(room.connections, 2);
  const ids: string[] = room.members.map((m: { user: string; anonymous: boolean; sessions: { id: string }[] }) => (assert.equal(m.anonymous, true), assert.equal(m.sessions[0]!.id, m.user), m.user));
  assert.equal(new Set(ids).size, 2);
  for (const secret of [alice.clientId, bob.clientId]) assert.ok(!JSON.stringify(room).includes(secret), 'clientIds are never shown');
  assert.equal((await httpRequest(port, { path: '/presence/room/**' })).json().users, 1, 'patterns have presence of their own');
  assert.deepEqual((await httpRequest(port, { path: '/presence/room?limit=1' })).json().members.length, 1);
  assert.equal((await httpRequest(port, { path: '/presence/room?limit=1' })).json().users, 2, 'users counts every member');

  await bob.send([{ channel: '/meta/disconnect', clientId: bob.clientId, id: bob.nextId() }]);
  assert.equal((await httpRequest(port, { path: '/presence/room' })).json().users, 1, 'a session that leaves leaves presence');
  await alice.send([{ channel: '/meta/unsubscribe', clientId: alice.clientId, subscription: '/room', id: alice.nextId() }]);
  assert.deepEqual((await httpRequest(port, { path: '/presence/room' })).json(), { channel: '/room', users: 0, connections: 0, members: [] });
});

test('a member is a user: three sessions of one token subject are one member with three connections, with its info; ?count counts only', async (t) => {
  const { port } = await startHerald(t, { jwtSecret: SECRET });
  const ada = await token('ada', { name: 'Ada' });
  const tabs = [new RawBayeux(port), new RawBayeux(port), new RawBayeux(port)];
  for (const tab of tabs) {
    assert.equal((await tab.handshake({ ext: { auth: { token: ada } } })).successful, true);
    assert.equal((await tab.subscribe('/room')).successful, true);
  }
  const bulky = new RawBayeux(port);
  await bulky.handshake({ ext: { auth: { token: await token('bo', { bio: 'x'.repeat(MAX_PRESENCE_INFO_BYTES) }) } } });
  await bulky.subscribe('/room');
  const guest = new RawBayeux(port);
  await guest.handshake();
  assert.equal((await guest.subscribe('/room')).successful, false, 'anonymous may not subscribe under a JWT key');
  const room = (await httpRequest(port, { path: '/presence/room', headers: { Authorization: `Bearer ${ada}` } })).json();
  assert.equal(room.users, 2);
  assert.equal(room.connections, 4);
  const [first, second] = room.members;
  assert.equal(first.user, 'ada');
  assert.deepEqual(first.info, { name: 'Ada' });
  assert.equal(first.connections, 3);
  assert.equal(first.sessions.length, 3);
  assert.equal(first.anonymous, undefined);
  assert.deepEqual([second.user, 'info' in second], ['bo', false], `info above ${MAX_PRESENCE_INFO_BYTES} bytes is left out`);
  const counted = await httpRequest(port, { path: '/presence/room?count', headers: { Authorization: `Bearer ${ada}` } });
  assert.deepEqual(counted.json(), { channel: '/room', users: 2, connections: 4 });
  assert.equal((await httpRequest(port, { path: '/presence/room?count' })).status, 401, 'access rules as for subscribing');
});

test('GET /presence refuses what it cannot answer, naming the problem', async (t) => {
  const { port } = await startHerald(t);
  const cases: [string, string, number, RegExp][] = [
    ['GET', '/presence/meta/connect', 403, /meta channels/],
    ['GET', '/presence/bad%20name', 400, /invalid channel/],
    ['GET', '/presence/room?limit=-1', 400, /limit/],
    ['GET', '/presence/room?count=7', 400, /count takes no value/],
    ['POST', '/presence/room', 405, /use GET/],
  ];
  for (const [method, path, status, error] of cases) {
    const res = await httpRequest(port, { method, path });
    assert.equal(res.status, status, path);
    assert.match(res.json().error, error, path);
  }
});
