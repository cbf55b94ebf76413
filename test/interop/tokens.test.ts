/** The official CometD client and the Faye client, unchanged, carrying a JWT the way their users do. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { postJson } from '../helpers/http.js';
import { CometdPeer, FayePeer } from '../helpers/interop.js';
import type { Received } from '../helpers/interop.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const token = (claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('erin').setExpirationTime('1h').sign(Buffer.from(SECRET));

describe('tokens from peer clients', () => {
  for (const transport of ['long-polling', 'websocket'] as const) {
    test(`CometD over ${transport}: handshake ext.auth.token grants /a/**, and /b is refused`, async (t) => {
      const { url, herald } = await startHerald(t, { jwtSecret: SECRET });
      const peer = new CometdPeer(`${url}/cometd`, transport);
      onCleanup(t, () => peer.disconnect());
      const jwt = await token({ subscribe: ['/a/**'], publish: ['/a/**'] });
      const reply = await new Promise<any>((resolve) => peer.client.handshake({ ext: { auth: { token: jwt } } }, resolve));
      assert.equal(reply.successful, true);
      const received: Received[] = [];
      await peer.subscribe('/a/x', (message) => received.push(message));
      await assert.rejects(peer.subscribe('/b', () => {}), /403:\/b:subscribe_denied/);
      const published = await peer.publish('/b', 'nope');
      assert.equal(published.successful, false);
      await peer.publish('/a/x', 'yes');
      await herald.publish('/b', 'secret');
      await waitFor('the allowed message', () => received.length === 1);
      assert.equal(received[0]!.data, 'yes');
    });

    test(`CometD over ${transport}: a forged token stops the client (advice none)`, async (t) => {
      const { url } = await startHerald(t, { jwtSecret: SECRET });
      const peer = new CometdPeer(`${url}/cometd`, transport);
      onCleanup(t, () => peer.disconnect());
      const reply = await new Promise<any>((resolve) => peer.client.handshake({ ext: { auth: { token: 'forged.token.here' } } }, resolve));
      assert.equal(reply.successful, false);
      assert.equal(reply.error, '403:invalid_token:handshake_denied');
      await waitFor('the client to give up', () => peer.client.isDisconnected());
      assert.equal(peer.handshakes.length, 1, 'no retry');
    });

    test(`Faye over ${transport}: an extension adds the token; subscriptions beyond it are refused`, async (t) => {
      const { url } = await startHerald(t, { jwtSecret: SECRET });
      const peer = new FayePeer(`${url}/bayeux`, transport);
      onCleanup(t, () => peer.disconnect());
      const jwt = await token({ subscribe: ['/a/**'] });
      peer.client.addExtension({
        outgoing(message: any, callback: (message: any) => void) {
          if (message.channel === '/meta/handshake') message.ext = { ...message.ext, auth: { token: jwt } };
          callback(message);
        },
      });
      const heard: unknown[] = [];
      await peer.subscribe('/a/1', (data) => heard.push(data));
      await assert.rejects(peer.subscribe('/b', () => {}), /403:\/b:subscribe_denied/);
    });
  }
});

describe('a subscription granted by a subscribe token, as peer clients act on its end', () => {
  const PUBLISH_KEY = 'publish-key-for-tests';
  const RULES = { channels: [{ pattern: '/**', subscribe: 'grant' as const }] };
  const signed = async (port: number, ttl: number) =>
    (await postJson(port, '/sign', { channel: '/orders/42', ttl }, { Authorization: `Bearer ${PUBLISH_KEY}` })).json().token as string;

  for (const transport of ['long-polling', 'websocket'] as const) {
    test(`CometD over ${transport}: a /meta/unsubscribe listener sees token_expired, resubscribes with a fresh token and receives again`, async (t) => {
      const { url, port, herald } = await startHerald(t, { publishKey: PUBLISH_KEY, permissions: RULES, timeoutMs: 5_000 });
      const peer = new CometdPeer(`${url}/cometd`, transport);
      onCleanup(t, () => peer.disconnect());
      await peer.handshake();
      const received: unknown[] = [];
      const subscribed = (token: string) => ({ ext: { auth: { token } } });
      let handle = peer.client.subscribe('/orders/42', (m: Received) => received.push(m.data), subscribed(await signed(port, 2)));
      const ended: any[] = [];
      peer.client.addListener('/meta/unsubscribe', (message: any) => {
        if (message.ext?.herald?.reason !== 'token_expired') return;
        ended.push(message);
        void signed(port, 60).then((token) => (handle = peer.client.resubscribe(handle, subscribed(token))));
      });
      await waitFor('the subscription', () => herald.stats().patterns === 1);
      await herald.publish('/orders/42', 'before');
      await waitFor('the first message', () => received.includes('before'));
      await waitFor('the end of the subscription', () => ended.length === 1, 5_000);
      assert.equal(ended[0].subscription, '/orders/42');
      await waitFor('the resubscription', () => herald.stats().patterns === 1);
      await herald.publish('/orders/42', 'after');
      await waitFor('the message after renewing', () => received.includes('after'));
      assert.equal(peer.handshakes.length, 1, 'the same session throughout');
    });
  }
});
