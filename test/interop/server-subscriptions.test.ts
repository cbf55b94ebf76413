/**
 * Real clients under server subscriptions. The Herald client reports them (`serverSubscription`),
 * hands their messages to `serverMessage` handlers, and keeps them across a reconnect without
 * loss, though its token alone may not subscribe there. The official CometD client and the Faye
 * client get the messages on their connection and pass over the notices; what each then does with
 * a message on a channel it never subscribed to is what the README says: CometD hands it to a
 * listener added with addListener() for that channel, Faye to no subscriber (an incoming extension
 * sees it).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import type { HeraldClientOptions } from '../../src/client/herald.js';
import type { Herald as HeraldServer } from '../../src/server/create-herald.js';
import { publicIdOf } from '../../src/core/ids.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { CometdPeer, FayePeer } from '../helpers/interop.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const NOTES = '/user/42/notifications';
/** How long a client may take to come back: the target is well under a second. */
const RECOVERY_MS = 3_000;
type Hookable = { after(fn: () => unknown): void };

/** Publishes on `/probe` and waits for `received` to hold it: what was published before arrived first. */
async function settle(server: HeraldServer, received: unknown[], mark: string): Promise<void> {
  await server.publish('/probe', mark);
  await waitFor(mark, () => received.includes(mark));
}

for (const transport of ['long-polling', 'websocket'] as const) {
  describe(`CometD over ${transport}`, () => {
    test('a listener added with addListener() gets the messages of a channel the server subscribed it to; /meta/subscribe listeners see the notice; without a listener they are dropped quietly', async (t) => {
      const { url, herald: server } = await startHerald(t, { timeoutMs: 2_000 });
      const peer = new CometdPeer(`${url}/cometd`, transport);
      onCleanup(t, () => peer.disconnect());
      await peer.handshake();
      const probes: unknown[] = [];
      await peer.subscribe('/probe', (message) => probes.push(message.data));
      const notices: any[] = [];
      peer.client.addListener('/meta/subscribe', (message: any) => notices.push(message));
      peer.client.addListener('/meta/unsubscribe', (message: any) => notices.push(message));
      const heard: unknown[] = [];
      peer.client.addListener(NOTES, (message: any) => heard.push(message.data));

      assert.deepEqual(await server.serverSubscribe({ session: publicIdOf(peer.client.getClientId()!), channel: NOTES }), { reachedHere: 1 });
      await server.publish(NOTES, 'hello');
      await server.publish('/user/42/unheard', 'x');
      assert.deepEqual(await server.serverSubscribe({ session: publicIdOf(peer.client.getClientId()!), channel: '/user/42/unheard' }), { reachedHere: 1 });
      await server.publish('/user/42/unheard', 'nobody listens');
      await settle(server, probes, 'probe-1');
      assert.deepEqual(heard, ['hello']);
      const told = notices.filter((notice) => notice.ext?.herald?.server === true).map((notice) => [notice.channel, notice.subscription]);
      assert.deepEqual(told, [['/meta/subscribe', NOTES], ['/meta/subscribe', '/user/42/unheard']]);

      await server.serverUnsubscribe({ session: publicIdOf(peer.client.getClientId()!), channel: NOTES });
      await server.publish(NOTES, 'after');
      await settle(server, probes, 'probe-2');
      assert.deepEqual(heard, ['hello'], 'unsubscribe stops deliveries');
      assert.deepEqual(notices.at(-1).channel, '/meta/unsubscribe');
      assert.equal(peer.client.isDisconnected(), false);
    });
  });

  describe(`Faye over ${transport}`, () => {
    test('no subscriber receives a channel it did not subscribe to; an incoming extension sees the notice and the messages; the client carries on', async (t) => {
      const { url, herald: server } = await startHerald(t, { timeoutMs: 2_000 });
      const peer = new FayePeer(`${url}/bayeux`, transport);
      onCleanup(t, () => peer.disconnect());
      const seen: any[] = [];
      peer.client.addExtension({
        incoming: (message: any, callback: (message: any) => void) => {
          if (message.ext?.herald?.server === true || message.channel === NOTES) seen.push(message);
          callback(message);
        },
      });
      const probes: unknown[] = [];
      await peer.subscribe('/probe', (data) => probes.push(data));
      const wildcard: unknown[] = [];
      await peer.subscribe('/elsewhere/**', (data) => wildcard.push(data));

      assert.deepEqual(await server.serverSubscribe({ session: publicIdOf(peer.clientId!), channel: NOTES }), { reachedHere: 1 });
      await server.publish(NOTES, 'hello');
      await settle(server, probes, 'probe-1');
      assert.deepEqual(seen.map((message) => [message.channel, message.subscription ?? message.data]), [['/meta/subscribe', NOTES], [NOTES, 'hello']]);
      assert.deepEqual(wildcard, [], 'Faye hands a message only to its own subscriptions');

      await server.serverUnsubscribe({ session: publicIdOf(peer.clientId!), channel: NOTES });
      await server.publish(NOTES, 'after');
      await settle(server, probes, 'probe-2');
      assert.deepEqual(seen.map((message) => message.channel), ['/meta/subscribe', NOTES, '/meta/unsubscribe']);
    });
  });
}

const token = (sub: string) =>
  new SignJWT({ subscribe: ['/probe'] }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(Buffer.from(SECRET));

const variants: [string, HeraldClientOptions][] = [
  ['long-polling', { transports: ['long-polling'] }],
  ['websocket', { transports: ['websocket'], WebSocket }],
];

for (const [name, options] of variants) {
  describe(`the Herald client over ${name}`, () => {
    test('reports the server subscription, hands its messages to serverMessage, keeps it across a reconnect without loss (beyond its token\'s rights), and lets it go on unsubscribe', async (t) => {
      const { url, herald: server } = await startHerald(t, { jwtSecret: SECRET, timeoutMs: 2_000, historySize: 100 });
      const client = new Herald(`${url}/bayeux`, { shareConnection: false, backoff: { initialMs: 20, maxMs: 200 }, token: await token('42'), ...options });
      onCleanup(t, () => client.close());
      const changes: [string, boolean][] = [];
      client.on('serverSubscription', (channel, subscribed) => changes.push([channel, subscribed]));
      const received: [unknown, string, string][] = [];
      client.on('serverMessage', (data, info) => received.push([data, info.channel, info.subscription]));
      const probes: unknown[] = [];
      await client.subscribe('/probe', (data) => probes.push(data)).ready;

      assert.deepEqual(await server.serverSubscribe({ user: '42', channel: NOTES }), { reachedHere: 1 });
      await server.publish(NOTES, 1);
      await waitFor('the first message', () => received.length === 1);
      assert.deepEqual(changes, [[NOTES, true]]);
      assert.deepEqual(client.serverSubscriptions, [NOTES]);

      // A new session: the client subscribes again with its grant, resuming after the last id.
      const oldSessions = (await server.userSessions('42')).sessions.map((session) => session.id);
      await server.disconnect({ user: '42' });
      await server.publish(NOTES, 2);
      await waitFor(
        'a new session on the channel',
        async () => (await server.userSessions('42')).sessions.some((session) => !oldSessions.includes(session.id) && session.subscriptions.includes(NOTES)),
        RECOVERY_MS,
      );
      await server.publish(NOTES, 3);
      await waitFor('every message', () => received.length === 3, RECOVERY_MS);
      assert.deepEqual(received, [1, 2, 3].map((n) => [n, NOTES, NOTES]));
      assert.deepEqual(changes, [[NOTES, true]], 'a renewed grant is no news');

      // Its own unsubscribe of a channel it also holds leaves the server subscription alone.
      const own = client.subscribe(NOTES, () => {});
      await own.ready;
      own.unsubscribe();
      await server.publish(NOTES, 4);
      await waitFor('still delivered', () => received.length === 4);

      assert.deepEqual(await server.serverUnsubscribe({ user: '42', channel: NOTES }), { reachedHere: 1 });
      await waitFor('told', () => changes.length === 2);
      assert.deepEqual(changes[1], [NOTES, false]);
      await server.publish(NOTES, 5);
      await settle(server, probes, 'probe');
      assert.equal(received.length, 4, 'unsubscribe stops deliveries');
      assert.deepEqual(client.serverSubscriptions, []);
    });
  });
}
