/**
 * Real clients under the control plane: the official CometD client and the Faye client, over
 * long-polling and WebSocket, recover from a kick (handshake again, resubscribe, receive what is
 * published next) and stop on a ban; the Herald client resumes a kick without loss, reports a ban
 * or a revoked token and stops, and comes back once with a fresh token when it can fetch one.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import type { HeraldClientOptions } from '../../src/client/herald.js';
import type { State, StateDetail } from '../../src/client/upstream.js';
import type { Herald as HeraldServer } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { CometdPeer, FayePeer } from '../helpers/interop.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const CHANNEL = '/room/lobby';
/** How long a client may take to come back: the target is well under a second. */
const RECOVERY_MS = 3_000;
type Hookable = { after(fn: () => unknown): void };

/** A server that counts handshakes, so a client that stopped can be seen not to come back. */
async function start(t: Hookable, options = {}) {
  const running = await startHerald(t, { timeoutMs: 2_000, historySize: 100, ...options });
  let handshakes = 0;
  running.herald.use({
    incoming: async (message) => {
      if (message.channel === '/meta/handshake') handshakes++;
      return message;
    },
  });
  return { ...running, handshakes: () => handshakes };
}

interface Subscriber {
  clientId(): string | undefined;
  /** The client's own word that it will not come back. */
  stopped(): boolean;
  readonly received: unknown[];
}

async function cometd(t: Hookable, url: string, transport: 'long-polling' | 'websocket'): Promise<Subscriber> {
  const peer = new CometdPeer(`${url}/cometd`, transport);
  onCleanup(t, () => peer.disconnect());
  await peer.handshake();
  const received: unknown[] = [];
  let handle = await peer.subscribe(CHANNEL, (message) => received.push(message.data));
  // As CometD's users write it: resubscribe when a handshake re-establishes the session.
  peer.client.addListener('/meta/handshake', (reply: any) => {
    if (reply.successful && reply.reestablish) handle = peer.client.resubscribe(handle);
  });
  return { clientId: () => peer.client.getClientId() ?? undefined, stopped: () => peer.client.isDisconnected(), received };
}

async function faye(t: Hookable, url: string, transport: 'long-polling' | 'websocket'): Promise<Subscriber> {
  const peer = new FayePeer(`${url}/bayeux`, transport);
  onCleanup(t, () => peer.disconnect());
  const received: unknown[] = [];
  await peer.subscribe(CHANNEL, (data) => received.push(data));
  // Faye gives up for good once the server advised `none` (its client.js checks nothing else).
  return { clientId: () => peer.clientId, stopped: () => peer.client._advice.reconnect === 'none', received };
}

/** Waits until one session holds the subscription (the client's, after any handshake). */
async function subscribedOnce(herald: HeraldServer): Promise<void> {
  await waitFor('one session subscribed', () => herald.sessionCount === 1 && herald.stats().patterns === 1, RECOVERY_MS);
}

for (const [name, open] of Object.entries({ cometd, faye })) {
  for (const transport of ['long-polling', 'websocket'] as const) {
    describe(`${name} over ${transport}`, () => {
      test('kicked (reconnect): handshakes again, resubscribes, and receives what is published after', async (t) => {
        const { url, herald, handshakes } = await start(t);
        const subscriber = await open(t, url, transport);
        await herald.publish(CHANNEL, 'before');
        await waitFor('the first message', () => subscriber.received.includes('before'));
        const oldId = subscriber.clientId();
        const seen = handshakes();
        assert.deepEqual(await herald.disconnect({ channel: CHANNEL, reason: 'permissions changed' }), { closedHere: 1 });
        await waitFor('a new session', () => subscriber.clientId() !== undefined && subscriber.clientId() !== oldId && handshakes() > seen, RECOVERY_MS);
        await subscribedOnce(herald);
        await herald.publish(CHANNEL, 'after');
        await waitFor('the message after the kick', () => subscriber.received.includes('after'), RECOVERY_MS);
        assert.equal(subscriber.stopped(), false);
      });

      test('banned (do not come back): the client stops and never handshakes again', async (t) => {
        const { url, herald, handshakes } = await start(t);
        const subscriber = await open(t, url, transport);
        await subscribedOnce(herald);
        const seen = handshakes();
        assert.deepEqual(await herald.disconnect({ channel: CHANNEL, reason: 'spam', reconnect: false }), { closedHere: 1 });
        await waitFor('the client to give up', () => subscriber.stopped(), RECOVERY_MS);
        // A second client's whole round trip, after the first would have retried (its back-off is 100–200 ms).
        const probe = await open(t, url, transport);
        await waitFor('the probe subscribed', () => herald.stats().patterns === 1);
        await herald.publish(CHANNEL, 'probe');
        await waitFor('the probe receives', () => probe.received.includes('probe'));
        assert.equal(handshakes(), seen + 1, 'only the probe handshook');
        assert.equal(subscriber.received.includes('probe'), false);
      });
    });
  }
}

const token = (sub: string, issuedAt: number) =>
  new SignJWT({ subscribe: ['/**'] }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(issuedAt).setExpirationTime('1h').sign(Buffer.from(SECRET));

const variants: [string, HeraldClientOptions][] = [
  ['long-polling', { transports: ['long-polling'] }],
  ['websocket', { transports: ['websocket'], WebSocket }],
];

for (const [name, options] of variants) {
  describe(`the Herald client over ${name}`, () => {
    function client(t: Hookable, url: string, extra: HeraldClientOptions = {}) {
      const herald = new Herald(`${url}/bayeux`, { shareConnection: false, backoff: { initialMs: 20, maxMs: 200 }, ...options, ...extra });
      onCleanup(t, () => herald.close());
      const states: [State, StateDetail][] = [];
      herald.on('state', (state: State, detail: StateDetail) => states.push([state, detail]));
      return { herald, states, disconnected: () => states.find(([state]) => state === 'disconnected')?.[1] };
    }

    test('kicked: comes back and resumes without losing what was published meanwhile', async (t) => {
      const { url, herald: server } = await start(t);
      const { herald } = client(t, url);
      const received: number[] = [];
      await herald.subscribe(CHANNEL, (data: number) => received.push(data)).ready;
      await server.publish(CHANNEL, 1);
      await waitFor('the first message', () => received.length === 1);
      await server.disconnect({ channel: CHANNEL });
      // Published while the client is away: it resumes from the last id it saw.
      await server.publish(CHANNEL, 2);
      await subscribedOnce(server);
      await server.publish(CHANNEL, 3);
      await waitFor('every message', () => received.length === 3, RECOVERY_MS);
      assert.deepEqual(received, [1, 2, 3]);
    });

    test('banned: reports it (the reason and the operator\'s words) and stops', async (t) => {
      const { url, herald: server, handshakes } = await start(t);
      const { herald, disconnected } = client(t, url);
      await herald.subscribe(CHANNEL, () => {}).ready;
      await server.disconnect({ channel: CHANNEL, reason: 'spam', reconnect: false });
      const detail = await waitFor('the client to report it', disconnected, RECOVERY_MS);
      assert.match(detail.error!.message, /^403:banned,spam:session_closed$/);
      assert.equal(handshakes(), 1);
      assert.equal(server.sessionCount, 0);
    });

    test('its token revoked: with a fixed token it reports it and stops; with a token source it comes back once with a fresh token', async (t) => {
      const { url, herald: server } = await start(t, { jwtSecret: SECRET });
      const now = Math.floor(Date.now() / 1000);
      const fixed = client(t, url, { token: await token('ivan', now - 10) });
      let asked = 0;
      const fresh = [await token('judy', now - 10), await token('judy', now + 2)];
      const sourced = client(t, url, { token: () => fresh[Math.min(asked++, 1)]! });
      const received: string[] = [];
      await fixed.herald.subscribe(CHANNEL, () => {}).ready;
      await sourced.herald.subscribe(CHANNEL, (data: string) => received.push(data)).ready;
      await server.revoke({ sub: 'ivan', until: now + 3600 });
      await server.revoke({ sub: 'judy', until: now + 3600 });
      const detail = await waitFor('the fixed-token client to report it', fixed.disconnected, RECOVERY_MS);
      assert.match(detail.error!.message, /^403:token_revoked:session_closed$/);
      await waitFor('the other back with its fresh token', () => asked === 2 && server.sessionCount === 1 && server.stats().patterns === 1, RECOVERY_MS);
      await server.publish(CHANNEL, 'after');
      await waitFor('the message', () => received.includes('after'), RECOVERY_MS);
      assert.equal(sourced.disconnected(), undefined);
    });
  });
}
