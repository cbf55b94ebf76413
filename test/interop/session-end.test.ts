/**
 * Sessions the server ends while the client is still there: the real CometD and Faye clients must
 * be told to handshake again (never `none`), and then resubscribe and receive, over long-polling
 * and WebSocket alike.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { createHerald } from '../../src/server/create-herald.js';
import type { Herald, HeraldOptions } from '../../src/server/create-herald.js';
import type { Logger } from '../../src/server/logger.js';
import { onCleanup } from '../helpers/cleanup.js';
import { postJson } from '../helpers/http.js';
import { CometdPeer, FayePeer } from '../helpers/interop.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const CHANNEL = '/a/ticker';
/** How long a client may take to come back: the target is well under a second. */
const RECOVERY_MS = 3_000;

interface Rig {
  herald: Herald;
  port: number;
  url: string;
  /** Reasons sessions were closed for, in order. */
  closed: string[];
  /** Cuts every connection and refuses new ones, as a network outage would. */
  block(): void;
  unblock(): void;
}

async function startRig(t: { after(fn: () => unknown): void }, options: HeraldOptions): Promise<Rig> {
  const closed: string[] = [];
  const quiet = () => {};
  const logger: Logger = {
    debug: (message, fields) => {
      if (message === 'session closed') closed.push(String(fields?.reason));
    },
    info: quiet,
    warn: quiet,
    error: quiet,
  };
  const herald = createHerald({ timeoutMs: 2_000, ...options, logger });
  const server = createServer();
  const sockets = new Set<Socket>();
  let blocked = false;
  server.prependListener('connection', (socket: Socket) => {
    if (blocked) return socket.destroy();
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  herald.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  onCleanup(t, async () => {
    await herald.close();
    server.close();
  });
  return {
    herald,
    port,
    url: `http://127.0.0.1:${port}`,
    closed,
    block() {
      blocked = true;
      for (const socket of sockets) socket.destroy();
    },
    unblock() {
      blocked = false;
    },
  };
}

/** A real client subscribed to CHANNEL, as its users write one (CometD resubscribes in its handshake listener; Faye by itself). */
interface Subscriber {
  clientId(): string | undefined;
  readonly received: unknown[];
}

type HandshakeToken = (() => string) | undefined;

async function cometd(t: { after(fn: () => unknown): void }, rig: Rig, transport: 'long-polling' | 'websocket', token: HandshakeToken): Promise<Subscriber> {
  const peer = new CometdPeer(`${rig.url}/cometd`, transport);
  onCleanup(t, () => peer.disconnect());
  if (token !== undefined) {
    peer.client.registerExtension('auth', {
      outgoing: (message: any) => {
        if (message.channel === '/meta/handshake') message.ext = { ...message.ext, auth: { token: token() } };
        return message;
      },
    });
  }
  await peer.handshake();
  const received: unknown[] = [];
  let handle = await peer.subscribe(CHANNEL, (message) => received.push(message.data));
  peer.client.addListener('/meta/handshake', (reply: any) => {
    if (reply.successful && reply.reestablish) handle = peer.client.resubscribe(handle);
  });
  return { clientId: () => peer.client.getClientId() ?? undefined, received };
}

async function faye(t: { after(fn: () => unknown): void }, rig: Rig, transport: 'long-polling' | 'websocket', token: HandshakeToken): Promise<Subscriber> {
  const peer = new FayePeer(`${rig.url}/bayeux`, transport);
  onCleanup(t, () => peer.disconnect());
  if (token !== undefined) {
    peer.client.addExtension({
      outgoing(message: any, callback: (message: any) => void) {
        if (message.channel === '/meta/handshake') message.ext = { ...message.ext, auth: { token: token() } };
        callback(message);
      },
    });
  }
  const received: unknown[] = [];
  await peer.subscribe(CHANNEL, (data) => received.push(data));
  return { clientId: () => peer.clientId, received };
}

/** Receives, lets `end` end the session on the server, then checks the client is back and receiving. */
async function survives(rig: Rig, subscriber: Subscriber, end: (clientId: string) => Promise<void>, expectedReason: string): Promise<void> {
  await rig.herald.publish(CHANNEL, 'before');
  await waitFor('the first message', () => subscriber.received.includes('before'));
  const oldId = subscriber.clientId()!;
  await end(oldId);
  assert.ok(rig.closed.includes(expectedReason), `the session closed as ${expectedReason} (saw ${rig.closed.join(', ')})`);
  await waitFor(
    'the client to handshake again and resubscribe',
    () => subscriber.clientId() !== undefined && subscriber.clientId() !== oldId && rig.herald.sessionCount === 1 && rig.herald.stats().patterns === 1,
    RECOVERY_MS,
  );
  await rig.herald.publish(CHANNEL, 'after');
  await waitFor('the message after the new handshake', () => subscriber.received.includes('after'), RECOVERY_MS);
}

const CLIENTS = { cometd, faye } as const;

for (const [name, open] of Object.entries(CLIENTS)) {
  for (const transport of ['long-polling', 'websocket'] as const) {
    describe(`${name} over ${transport}: a session the server ends`, () => {
      test('by a /meta/disconnect for its clientId sent on another connection: the client handshakes again', async (t) => {
        const rig = await startRig(t, {});
        const subscriber = await open(t, rig, transport, undefined);
        await survives(
          rig,
          subscriber,
          async (clientId) => {
            await waitFor('a held connect', () => rig.herald.stats().heldConnects === 1);
            const [reply] = (await postJson(rig.port, '/bayeux', [{ channel: '/meta/disconnect', clientId }])).json();
            assert.equal(reply.successful, true);
          },
          'ended_elsewhere',
        );
      });

      test('by token expiry: the client handshakes again with a fresh token', async (t) => {
        const rig = await startRig(t, { jwtSecret: SECRET, maxIntervalMs: 2_000 });
        const sign = (exp: number) => new SignJWT({ subscribe: ['/a/**'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('erin').setExpirationTime(exp).sign(Buffer.from(SECRET));
        const now = Math.floor(Date.now() / 1000);
        const tokens = [await sign(now + 2), await sign(now + 3600)];
        let handshakes = 0;
        const subscriber = await open(t, rig, transport, () => tokens[Math.min(handshakes++, 1)]!);
        await survives(rig, subscriber, () => waitFor('the token to expire', () => rig.closed.includes('token_expired'), 5_000).then(() => undefined), 'token_expired');
      });

      test('by expiry after an outage longer than max-interval: the client handshakes again', async (t) => {
        const rig = await startRig(t, { maxIntervalMs: 500 });
        const subscriber = await open(t, rig, transport, undefined);
        await survives(
          rig,
          subscriber,
          async () => {
            rig.block();
            await waitFor('the session to expire', () => rig.closed.includes('expired'));
            rig.unblock();
          },
          'expired',
        );
      });
    });
  }
}
