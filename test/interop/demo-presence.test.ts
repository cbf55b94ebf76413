/**
 * The demo chat's "who is here" is real presence: with `demo` on, the rooms (`/chat/**`) have
 * join/leave events, and a page without a token names itself with a handle sent at the handshake
 * (`ext.herald.info`), shown as the anonymous member's info — in `presence()` and in join and
 * leave events, which is all the page (web/chat.js) uses. Two Herald clients in Node, as two pages.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import type { HeraldClientOptions } from '../../src/client/herald.js';
import type { PresenceMember } from '../../src/client/presence.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { waitFor } from '../helpers/wait.js';

const GRACE_MS = 300;

function page(t: { after(fn: () => unknown): void }, url: string, info: unknown, options: HeraldClientOptions = {}): Herald {
  const herald = new Herald(`${url}/bayeux`, { shareConnection: false, backoff: { initialMs: 20, maxMs: 200 }, WebSocket: WebSocket as never, ext: { herald: { info } }, ...options });
  onCleanup(t, () => herald.close());
  return herald;
}

test('two demo pages: each sees the other in the room, by its handle, join and — after the grace window — leave', async (t) => {
  const { url } = await startHerald(t, { demo: true, presenceGraceMs: GRACE_MS });
  const alice = page(t, url, { name: 'alice', id: 'browser-a' });
  const heard: string[] = [];
  const room = alice.subscribe('/chat/lobby', () => {});
  room.on('join', (member: PresenceMember) => heard.push(`join ${member.info?.name} ${member.anonymous}`));
  room.on('leave', (member: PresenceMember) => heard.push(`leave ${member.info?.name}`));
  await room.ready;

  const bob = page(t, url, { name: 'bob', id: 'browser-b' }, { transports: ['long-polling'] });
  await bob.subscribe('/chat/lobby', () => {}).ready;
  await waitFor('alice hears bob join', () => heard.length === 1);
  assert.deepEqual(heard, ['join bob true'], 'a handle, not an identity: bob stays anonymous');

  const { members } = await bob.presence('/chat/lobby');
  assert.deepEqual(
    members!.map((member) => [member.info, member.anonymous, member.connections]),
    [
      [{ name: 'alice', id: 'browser-a' }, true, 1],
      [{ name: 'bob', id: 'browser-b' }, true, 1],
    ],
  );

  const left = Date.now();
  bob.close();
  await waitFor('alice hears bob leave', () => heard.length === 2);
  assert.ok(Date.now() - left >= GRACE_MS - 20, 'not before the grace window');
  assert.deepEqual(heard, ['join bob true', 'leave bob']);
});

test('a handle too big to show is left out; an operator rule of the rooms wins over the demo one', async (t) => {
  const { url } = await startHerald(t, { demo: true, presenceGraceMs: GRACE_MS, permissions: { channels: [{ pattern: '/chat/quiet', presence: 'off' }] } });
  const alice = page(t, url, { name: 'alice' });
  const heard: string[] = [];
  for (const channel of ['/chat/quiet', '/chat/loud']) {
    const room = alice.subscribe(channel, () => {});
    room.on('join', (member: PresenceMember) => heard.push(`${channel} ${member.info?.name ?? '(no info)'}`));
    await room.ready;
  }
  const bulky = page(t, url, { name: 'x'.repeat(2000) });
  // Quiet first: were it followed, its join would be read and told before loud's.
  await bulky.subscribe('/chat/quiet', () => {}).ready;
  await bulky.subscribe('/chat/loud', () => {}).ready;
  await waitFor('alice hears the join on /chat/loud', () => heard.length > 0);
  assert.deepEqual(heard, ['/chat/loud (no info)'], 'the operator turned /chat/quiet off; the bulky handle is not shown');
  const { members } = await alice.presence('/chat/quiet');
  assert.deepEqual(members!.map((member) => member.info), [{ name: 'alice' }, undefined], 'presence() is there all the same');
});
