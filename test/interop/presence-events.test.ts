/**
 * Join and leave events on one node, as real clients receive them: the Herald client in Node
 * (`subscription.on('join' | 'leave')`, over WebSocket and long-polling), the official CometD
 * client (the marker in `ext.herald.presence` reaches its listener with the message), the Faye
 * client (its listener gets the data; an incoming extension sees the marker), a REST SSE stream
 * (`event: join` / `event: leave`, without an id), and `herald.on(…)` in code. A member that
 * reconnects, hands over between tabs or long-polls slowly never leaves; one that goes leaves
 * once, after the grace window; and messages' ids and resumes are untouched.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import type { HeraldClientOptions } from '../../src/client/herald.js';
import type { HeraldOptions, MemberEvent, SubscriptionEvent } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream } from '../helpers/http.js';
import { CometdPeer, FayePeer } from '../helpers/interop.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'presence-secret-of-at-least-32-chars!';
const GRACE_MS = 400;
const OPTIONS: HeraldOptions = {
  jwtSecret: SECRET,
  permissions: { channels: [{ pattern: '/chat/**', subscribe: 'anyone', publish: 'anyone', presence: 'events' }, { pattern: '/news/**', subscribe: 'anyone', publish: 'anyone' }] },
  presenceGraceMs: GRACE_MS,
};

const token = (sub: string, info?: unknown) =>
  new SignJWT(info === undefined ? {} : { info }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('1h').sign(Buffer.from(SECRET));

function client(t: { after(fn: () => unknown): void }, url: string, options: HeraldClientOptions = {}): Herald {
  const herald = new Herald(`${url}/bayeux`, { shareConnection: false, backoff: { initialMs: 20, maxMs: 200 }, ...options });
  onCleanup(t, () => herald.close());
  return herald;
}

/** What each observer heard of `user`, as `join`/`leave` lines. */
const of = (user: string, heard: readonly { kind: string; user: string }[]) => heard.filter((event) => event.user === user).map((event) => event.kind);

test('every door hears a member join and, after the grace window, leave — once; herald.on tells the code', async (t) => {
  const { url, port, herald } = await startHerald(t, OPTIONS);
  const inCode: string[] = [];
  for (const kind of ['join', 'leave'] as const) herald.on(kind, (event: MemberEvent) => inCode.push(`${kind} ${event.subject} ${event.channel} ${JSON.stringify(event.info)}`));

  const viaHerald: { kind: string; user: string; info?: any }[] = [];
  const observer = client(t, url, { token: await token('observer'), WebSocket: WebSocket as never });
  const subscription = observer.subscribe('/chat/room', () => {});
  subscription.on('join', (member) => viaHerald.push({ kind: 'join', ...member }));
  subscription.on('leave', (member) => viaHerald.push({ kind: 'leave', ...member }));
  await subscription.ready;

  const viaCometd: { kind: string; user: string }[] = [];
  const cometd = new CometdPeer(`${url}/cometd`, 'long-polling');
  onCleanup(t, () => cometd.disconnect());
  await cometd.handshake();
  await cometd.subscribe('/chat/room', (message: any) => viaCometd.push({ kind: message.ext?.herald?.presence ?? 'message', user: message.data?.user }));

  const viaFaye: { kind: string; user: string }[] = [];
  const faye = new FayePeer(`${url}/bayeux`, 'websocket');
  onCleanup(t, () => faye.disconnect());
  let marker: string | undefined;
  faye.client.addExtension({ incoming: (message: any, callback: (m: any) => void) => ((marker = message.ext?.herald?.presence), callback(message)) });
  await faye.subscribe('/chat/room', (data: any) => viaFaye.push({ kind: marker ?? 'message', user: data?.user }));

  const sse = await openStream(port, '/sub/chat/room', { Accept: 'text/event-stream' }, t);

  const ada = client(t, url, { token: await token('ada', { name: 'Ada' }), transports: ['long-polling'] });
  await ada.subscribe('/chat/room', () => {}).ready;
  await waitFor('every door hears ada join', () => [viaHerald, viaCometd, viaFaye].every((heard) => of('ada', heard).length === 1) && sse.text().includes('"user":"ada"'));
  assert.deepEqual(viaHerald.find((event) => event.user === 'ada'), { kind: 'join', user: 'ada', info: { name: 'Ada' }, connections: 1 });
  assert.match(sse.text(), /event: join\ndata: \{"event":"join","channel":"\/chat\/room","data":\{"user":"ada","info":\{"name":"Ada"\},"connections":1\}\}\n\n/);

  const left = Date.now();
  ada.close();
  await waitFor('every door hears ada leave', () => [viaHerald, viaCometd, viaFaye].every((heard) => of('ada', heard).length === 2) && sse.text().includes('event: leave'));
  assert.ok(Date.now() - left >= GRACE_MS - 20, 'not before the grace window');
  for (const heard of [viaHerald, viaCometd, viaFaye]) assert.deepEqual(of('ada', heard), ['join', 'leave']);
  assert.deepEqual(
    inCode.filter((line) => line.includes(' ada ')),
    ['join ada /chat/room {"name":"Ada"}', 'leave ada /chat/room {"name":"Ada"}'],
  );

  // Events are not messages: a message after them has its id, and SSE's Last-Event-ID stays on messages.
  const published = await herald.publish('/chat/room', { text: 'hi' });
  await waitFor('the message arrives by SSE', () => sse.text().includes('"text":"hi"'));
  const ids = [...sse.text().matchAll(/^id: (.*)$/gm)].map((match) => match[1]);
  assert.deepEqual(ids, [published.id], 'only the message carries an id');
  assert.equal((await httpRequest(port, { path: '/history/chat/room' })).json().messages.length, 1, 'history holds the message alone');
});

test('no flapping: a slow long-poll, a reconnect with a new session, a tab handover and a second device say nothing', async (t) => {
  const { url, port, herald } = await startHerald(t, { ...OPTIONS, maxIntervalMs: 2_000 });
  const inCode: string[] = [];
  for (const kind of ['join', 'leave'] as const) herald.on(kind, (event: MemberEvent) => inCode.push(`${kind} ${event.subject}`));
  const heard: { kind: string; user: string }[] = [];
  const observer = client(t, url, { token: await token('observer') });
  const subscription = observer.subscribe('/chat/room', () => {});
  subscription.on('join', (member) => heard.push({ kind: 'join', ...member }));
  subscription.on('leave', (member) => heard.push({ kind: 'leave', ...member }));
  await subscription.ready;

  const jwt = await token('ada');
  const tab = async () => {
    const peer = new RawBayeux(port);
    assert.equal((await peer.handshake({ ext: { auth: { token: jwt } } })).successful, true);
    assert.equal((await peer.subscribe('/chat/room')).successful, true);
    return peer;
  };
  const goodbye = (peer: RawBayeux) => peer.send([{ channel: '/meta/disconnect', clientId: peer.clientId, id: peer.nextId() }]);
  let first = await tab();
  await waitFor('ada joins', () => heard.length === 1);
  // A long-poll between two connects: gone longer than the grace window, but its session lives.
  await new Promise((resolve) => setTimeout(resolve, GRACE_MS * 2));
  await first.connect({ advice: { timeout: 0 } });
  // A reload: the page says goodbye and a new session comes, within the window.
  await goodbye(first);
  first = await tab();
  // Tabs handing over: the second opens, the first closes.
  const second = await tab();
  await goodbye(first);
  // A second device under the same subject.
  const device = client(t, url, { token: jwt });
  await device.subscribe('/chat/room', () => {}).ready;
  await goodbye(second);
  // Past every grace window of the sessions that went: still one member, never left.
  await new Promise((resolve) => setTimeout(resolve, GRACE_MS * 2));
  const listing = await observer.presence('/chat/room');
  assert.deepEqual(
    listing.members!.map((member) => [member.user, member.connections]),
    [['observer', 1], ['ada', 1]],
  );
  assert.deepEqual(heard, [{ kind: 'join', user: 'ada', connections: 1 }]);
  assert.deepEqual(inCode, ['join observer', 'join ada']);
  // And when the last connection goes, one leave.
  device.close();
  await waitFor('ada leaves once', () => heard.length === 2);
  assert.deepEqual(heard[1], { kind: 'leave', user: 'ada' });
});

test('presence from every client: Herald client presence(), CometD remoteCall, counts; channels without events stay quiet; herald.on sessions and subscriptions', async (t) => {
  const { url, herald } = await startHerald(t, OPTIONS);
  const sessions: string[] = [];
  herald.on('session', (event) => sessions.push(`session ${event.subject} ${event.transport}`));
  herald.on('sessionClose', (event) => sessions.push(`close ${event.subject} ${event.reason}`));
  const subscriptions: string[] = [];
  const record = (kind: string) => (event: SubscriptionEvent) => subscriptions.push(`${kind} ${event.subject} ${event.channel} ${event.claims?.sub}`);
  herald.on('subscribe', record('subscribe'));
  herald.on('unsubscribe', record('unsubscribe'));

  const ada = client(t, url, { token: await token('ada', { name: 'Ada' }), WebSocket: WebSocket as never, transports: ['websocket'] });
  const news: string[] = [];
  const subscription = ada.subscribe('/news/today', () => {});
  subscription.on('join', () => news.push('join'));
  await subscription.ready;
  await ada.subscribe('/chat/room', () => {}).ready;
  const cometd = new CometdPeer(`${url}/cometd`, 'websocket');
  onCleanup(t, () => cometd.disconnect());
  await cometd.handshake();
  await cometd.subscribe('/news/today', () => {});
  const answer = await cometd.remoteCall('presence', { channel: '/chat/room' });
  assert.equal(answer.successful, true);
  assert.deepEqual(
    answer.data.members.map((member: any) => [member.user, member.info, member.connections]),
    [['ada', { name: 'Ada' }, 1]],
  );
  assert.deepEqual(await ada.presence('/news/today', { count: true }), { channel: '/news/today', users: 2, connections: 2 });
  await assert.rejects(ada.presence('/chat/room', { limit: -1 }), /limit must be an integer/);
  assert.deepEqual(news, [], 'a channel whose rule does not opt in has no events');

  subscription.unsubscribe();
  await waitFor('the unsubscribe is told', () => subscriptions.some((line) => line.startsWith('unsubscribe ada /news/today')));
  ada.close();
  await waitFor('the session close is told', () => sessions.some((line) => line.startsWith('close ada')));
  assert.ok(sessions.includes('session ada websocket'), sessions.join('\n'));
  assert.ok(subscriptions.includes('subscribe ada /chat/room ada'), subscriptions.join('\n'));
  assert.ok(subscriptions.includes('subscribe undefined /news/today undefined'), 'anonymous: no subject, no claims');
});
