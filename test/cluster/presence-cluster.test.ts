/**
 * Join and leave across three Herald nodes joined through a real Redis, as real clients hear
 * them (the Herald client, CometD, Faye, SSE) on nodes other than the member's: a user with
 * sessions on two nodes is one member; a user whose node died and who comes back on another
 * within the grace window neither leaves nor joins; a node killed with -9 makes its users leave once, after
 * its liveness lapses and the grace window passes — and a user still connected elsewhere does
 * not leave at all.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import { RedisEngine } from '../../src/engines/redis/redis-engine.js';
import type { HeraldOptions, MemberEvent } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startChildNode } from '../helpers/cluster.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream } from '../helpers/http.js';
import { CometdPeer, FayePeer } from '../helpers/interop.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'presence-secret-of-at-least-32-chars!';
const TTL_MS = 400;
const GRACE_MS = 500;
const OPTIONS: HeraldOptions = {
  jwtSecret: SECRET,
  permissions: { channels: [{ pattern: '/chat/**', subscribe: 'anyone', publish: 'anyone', presence: 'events' }] },
  presenceGraceMs: GRACE_MS,
  presenceSweepMs: 150,
};

const token = (sub: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('1h').sign(Buffer.from(SECRET));

type Heard = { kind: string; user: string }[];
const of = (user: string, heard: Heard) => heard.filter((event) => event.user === user).map((event) => event.kind);

test('three Redis nodes: every door hears members of other nodes; kill -9 makes its users leave once, after the grace window, and not those connected elsewhere', async (t) => {
  const redis = await startRedis(t);
  const node = async () => startHerald(t, { ...OPTIONS, engine: new RedisEngine({ url: redis.url, presenceTtlMs: TTL_MS }) });
  const [a, b] = [await node(), await node()];
  const c = await startChildNode(t, redis.url, OPTIONS as Record<string, unknown>, { presenceTtlMs: TTL_MS, nodeId: 'doomed' });
  const inCode: Record<'a' | 'b', string[]> = { a: [], b: [] };
  for (const [name, running] of [['a', a], ['b', b]] as const) {
    for (const kind of ['join', 'leave'] as const) running.herald.on(kind, (event: MemberEvent) => inCode[name].push(`${kind} ${event.subject}`));
  }

  // Observers on a and b, by every door.
  const viaHerald: Heard = [];
  const observer = new Herald(`${a.url}/bayeux`, { shareConnection: false, token: await token('observer'), WebSocket: WebSocket as never });
  onCleanup(t, () => observer.close());
  const subscription = observer.subscribe('/chat/room', () => {});
  subscription.on('join', (member) => viaHerald.push({ kind: 'join', user: member.user }));
  subscription.on('leave', (member) => viaHerald.push({ kind: 'leave', user: member.user }));
  await subscription.ready;
  const viaCometd: Heard = [];
  const cometd = new CometdPeer(`${b.url}/cometd`, 'long-polling');
  onCleanup(t, () => cometd.disconnect());
  await cometd.handshake();
  await cometd.subscribe('/chat/room', (message: any) => viaCometd.push({ kind: message.ext?.herald?.presence ?? 'message', user: message.data?.user }));
  const viaFaye: Heard = [];
  const faye = new FayePeer(`${a.url}/bayeux`, 'long-polling');
  onCleanup(t, () => faye.disconnect());
  let marker: string | undefined;
  faye.client.addExtension({ incoming: (message: any, callback: (m: any) => void) => ((marker = message.ext?.herald?.presence), callback(message)) });
  await faye.subscribe('/chat/room', (data: any) => viaFaye.push({ kind: marker ?? 'message', user: data?.user }));
  const sse = await openStream(b.port, '/sub/chat/room', { Accept: 'text/event-stream' }, t);
  const viaSse = (): Heard => [...sse.text().matchAll(/^event: (join|leave)\ndata: (.*)$/gm)].map(([, kind, data]) => ({ kind: kind!, user: JSON.parse(data!).data.user }));
  const everyDoor = () => [viaHerald, viaCometd, viaFaye, viaSse()];

  // ada is on the doomed node only; bob on it and on b.
  const onDoomed = async (sub: string) => {
    const peer = new RawBayeux(c.port);
    assert.equal((await peer.handshake({ ext: { auth: { token: await token(sub) } } })).successful, true);
    assert.equal((await peer.subscribe('/chat/room')).successful, true);
  };
  await onDoomed('ada');
  await onDoomed('bob');
  await onDoomed('carl');
  const bobElsewhere = new Herald(`${b.url}/bayeux`, { shareConnection: false, token: await token('bob') });
  onCleanup(t, () => bobElsewhere.close());
  await bobElsewhere.subscribe('/chat/room', () => {}).ready;
  await waitFor('every door hears ada and bob join', () => everyDoor().every((heard) => ['ada', 'bob', 'carl'].every((user) => of(user, heard).length === 1)));
  const listing = (await httpRequest(a.port, { path: '/presence/chat/room' })).json();
  const bob = listing.members.find((member: { user: string }) => member.user === 'bob');
  assert.deepEqual([bob.connections, new Set(bob.sessions.map((s: { node: string }) => s.node === 'doomed')).size], [2, 2], 'bob: one member, two nodes');

  const killedAt = Date.now();
  c.kill();
  // carl's client moves to b (its node died): back within the window, so no leave and no join.
  const carlMoved = new Herald(`${b.url}/bayeux`, { shareConnection: false, token: await token('carl') });
  onCleanup(t, () => carlMoved.close());
  await carlMoved.subscribe('/chat/room', () => {}).ready;
  await waitFor('every door hears ada leave', () => everyDoor().every((heard) => of('ada', heard).length === 2));
  assert.ok(Date.now() - killedAt >= GRACE_MS, 'not before the grace window');
  // Past another liveness lapse and grace window, and more sweeps: nothing else is said.
  await new Promise((resolve) => setTimeout(resolve, TTL_MS + GRACE_MS + 300));
  for (const heard of everyDoor()) {
    assert.deepEqual(of('ada', heard), ['join', 'leave']);
    assert.deepEqual(of('bob', heard), ['join'], 'bob is still connected on b');
    assert.deepEqual(of('carl', heard), ['join'], 'carl moved to b within the window');
  }
  for (const name of ['a', 'b'] as const) assert.deepEqual(inCode[name].filter((line) => / (ada|bob|carl)$/.test(line)).sort(), ['join ada', 'join bob', 'join carl', 'leave ada'], name);
  // observer, bob, carl, and the anonymous CometD, Faye and SSE doors.
  assert.deepEqual((await httpRequest(b.port, { path: '/presence/chat/room?count' })).json(), { channel: '/chat/room', users: 6, connections: 6 });
});
