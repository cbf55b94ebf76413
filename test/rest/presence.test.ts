import assert from 'node:assert/strict';
import { test } from 'node:test';
import { httpRequest } from '../helpers/http.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';

test('GET /presence/{channel} lists who subscribes, by public id, until they leave', async (t) => {
  const { port } = await startHerald(t);
  const [alice, bob] = [new RawBayeux(port), new RawBayeux(port)];
  await alice.open();
  await bob.open();
  assert.equal((await alice.subscribe('/room')).successful, true);
  assert.equal((await bob.subscribe(['/room', '/room/**'])).successful, true);
  const room = (await httpRequest(port, { path: '/presence/room' })).json();
  assert.equal(room.channel, '/room');
  assert.equal(room.count, 2);
  const ids: string[] = room.members.map((m: { id: string }) => m.id);
  assert.equal(new Set(ids).size, 2);
  for (const secret of [alice.clientId, bob.clientId]) assert.ok(!JSON.stringify(room).includes(secret), 'clientIds are never shown');
  assert.equal((await httpRequest(port, { path: '/presence/room/**' })).json().count, 1, 'patterns have presence of their own');
  assert.deepEqual((await httpRequest(port, { path: '/presence/room?limit=1' })).json().members.length, 1);
  assert.equal((await httpRequest(port, { path: '/presence/room?limit=1' })).json().count, 2, 'count is every member');

  await bob.send([{ channel: '/meta/disconnect', clientId: bob.clientId, id: bob.nextId() }]);
  assert.equal((await httpRequest(port, { path: '/presence/room' })).json().count, 1, 'a session that leaves leaves presence');
  await alice.send([{ channel: '/meta/unsubscribe', clientId: alice.clientId, subscription: '/room', id: alice.nextId() }]);
  assert.deepEqual((await httpRequest(port, { path: '/presence/room' })).json(), { channel: '/room', count: 0, members: [] });
});

test('GET /presence refuses what it cannot answer, naming the problem', async (t) => {
  const { port } = await startHerald(t);
  const cases: [string, string, number, RegExp][] = [
    ['GET', '/presence/meta/connect', 403, /meta channels/],
    ['GET', '/presence/bad%20name', 400, /invalid channel/],
    ['GET', '/presence/room?limit=-1', 400, /limit/],
    ['POST', '/presence/room', 405, /use GET/],
  ];
  for (const [method, path, status, error] of cases) {
    const res = await httpRequest(port, { method, path });
    assert.equal(res.status, status, path);
    assert.match(res.json().error, error, path);
  }
});
