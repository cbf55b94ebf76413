/** The Herald client with tokens: a fresh one on every handshake, and nothing lost when one expires. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import type { HeraldClientOptions } from '../../src/client/herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';

function token(expiresInS: number): Promise<string> {
  return new SignJWT({ subscribe: ['/feed/**'], publish: ['/feed/**'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('dana')
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInS)
    .sign(Buffer.from(SECRET));
}

const variants: [string, HeraldClientOptions][] = [
  ['long-polling', { transports: ['long-polling'] }],
  ['websocket', { transports: ['websocket'], WebSocket }],
];
for (const [name, options] of variants) {
  test(`over ${name}: a client whose token expires handshakes with a fresh one and misses nothing`, async (t) => {
    const { url, herald: server } = await startHerald(t, { jwtSecret: SECRET, historySize: 100 });
    let asked = 0;
    const client = new Herald(`${url}/bayeux`, {
      shareConnection: false,
      backoff: { initialMs: 20, maxMs: 200 },
      ...options,
      // The first token lives two seconds; later ones an hour.
      token: () => token(asked++ === 0 ? 2 : 3600),
    });
    onCleanup(t, () => client.close());
    const errors: Error[] = [];
    client.on('error', (error) => errors.push(error));
    const received: number[] = [];
    await client.subscribe('/feed/a', (data: number) => received.push(data)).ready;
    const forbidden = client.subscribe('/other', () => {});
    await assert.rejects(forbidden.ready, /subscribe to \/other refused: 403:\/other:subscribe_denied/);
    assert.equal(errors.length, 1, 'and said so as an error event');

    let sent = 0;
    // Publish across the expiry: the session closes, the client comes back with a new token and resumes.
    await waitFor('a second handshake', async () => {
      await server.publish('/feed/a', sent++);
      return asked >= 2;
    }, 10_000);
    for (let i = 0; i < 5; i++) await server.publish('/feed/a', sent++);
    await waitFor('every message', () => received.length === sent, 10_000);
    assert.deepEqual(received, Array.from({ length: sent }, (_, i) => i));
    assert.equal((await client.history('/feed/a', { limit: 1 })).messages.length, 1, 'history() carries the token');
  });
}
