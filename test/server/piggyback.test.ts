/**
 * `herald.piggyback(req, res, body)` from the outside, with raw HTTP: the application's body goes
 * out unchanged unless the request names, in `Herald-Session`, a session that may take
 * deliveries now; a wrong, absent, forged or stolen name (without its browser's cookie) changes
 * nothing and drains no queue.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { createHerald } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { httpRequest } from '../helpers/http.js';
import { startPiggybackApp as startApp, VALIDATION_BODY as BODY } from '../helpers/piggyback-app.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

const BODY_TEXT = JSON.stringify(BODY);


/** A raw Bayeux session that asked for piggyback, subscribed to `channel`, between polls. */
async function pollingSession(port: number, channel: string): Promise<RawBayeux> {
  const client = new RawBayeux(port);
  await client.handshake({ ext: { herald: { ids: true, piggyback: true } } });
  await client.subscribe(channel);
  await client.connect({ advice: { timeout: 0 } });
  return client;
}

const validate = (port: number, headers: Record<string, string> = {}) => httpRequest(port, { method: 'POST', path: '/validate', headers: { 'Content-Type': 'application/json', ...headers }, body: '{}' });

function assertUnchanged(res: Awaited<ReturnType<typeof validate>>): void {
  assert.equal(res.status, 422);
  assert.equal(res.text, BODY_TEXT, 'the application body, byte for byte');
  assert.equal(res.headers['herald-deliveries'], undefined);
}

describe('herald.piggyback', () => {
  test('adds the named session’s queued messages in an envelope, marked by a header, and takes them off its queue', async (t) => {
    const { herald, port } = await startApp(t, { timeoutMs: 300 });
    const client = await pollingSession(port, '/chat/a');
    await herald.publish('/chat/a', 'one');
    await herald.publish('/chat/a', 'two');
    const res = await validate(port, { 'Herald-Session': client.clientId, Cookie: client.cookie! });
    assert.equal(res.status, 422, 'the application’s status');
    assert.equal(res.headers['herald-deliveries'], '2');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers.vary, 'Origin, Herald-Session');
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const envelope = res.json();
    assert.deepEqual(envelope.body, BODY);
    assert.deepEqual(envelope.herald.map((m: any) => [m.channel, m.data]), [['/chat/a', 'one'], ['/chat/a', 'two']]);
    assert.ok(envelope.herald.every((m: any) => typeof m.ext.herald.id === 'string'));
    const connect = (await client.connect({ advice: { timeout: 0 } })).json();
    assert.equal(connect.length, 1, 'nothing twice');
    // Nothing queued: the body as it is.
    assertUnchanged(await validate(port, { 'Herald-Session': client.clientId }));
  });

  test('a wrong, absent, forged or stolen session header leaves the body unchanged and every queue as it was', async (t) => {
    const { herald, port } = await startApp(t, { timeoutMs: 300 });
    const victim = await pollingSession(port, '/chat/a');
    const other = await pollingSession(port, '/chat/a');
    await herald.publish('/chat/a', 'private');
    assertUnchanged(await validate(port));
    assertUnchanged(await validate(port, { 'Herald-Session': 'nope' }));
    assertUnchanged(await validate(port, { 'Herald-Session': victim.clientId.toUpperCase() }));
    assertUnchanged(await validate(port, { 'Herald-Session': `${victim.clientId}, ${victim.clientId}` }));
    assertUnchanged(await validate(port, { 'Herald-Session': 'x'.repeat(10_000) }));
    // Its clientId with another browser's cookie: refused as a Bayeux message would be.
    assertUnchanged(await validate(port, { 'Herald-Session': victim.clientId, Cookie: other.cookie! }));
    // Only in a cookie, as a page of another site could make the browser send it: nothing.
    assertUnchanged(await validate(port, { Cookie: `${victim.cookie!}; Herald-Session=${victim.clientId}` }));
    // The other session takes its own, and only its own.
    const mine = (await validate(port, { 'Herald-Session': other.clientId, Cookie: other.cookie! })).json();
    assert.deepEqual(mine.herald.map((m: any) => m.data), ['private']);
    const kept = (await victim.connect({ advice: { timeout: 0 } })).json();
    assert.deepEqual(kept.filter((m: any) => m.successful === undefined).map((m: any) => m.data), ['private'], 'the victim’s queue is intact');
  });

  test('not while a connect is held for the session: the connect takes them', async (t) => {
    const { herald, port } = await startApp(t, { timeoutMs: 5_000 });
    const client = await pollingSession(port, '/chat/a');
    const held = client.connect();
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    assertUnchanged(await validate(port, { 'Herald-Session': client.clientId }));
    await herald.publish('/chat/a', 'to the connect');
    assert.deepEqual((await held).json().slice(1).map((m: any) => m.data), ['to the connect']);
  });

  test('not for a session that did not ask at its handshake (a CometD or Faye client)', async (t) => {
    const { herald, port } = await startApp(t, { timeoutMs: 300 });
    const client = new RawBayeux(port);
    await client.handshake();
    await client.subscribe('/chat/a');
    await client.connect({ advice: { timeout: 0 } });
    await herald.publish('/chat/a', 'for the connect');
    assertUnchanged(await validate(port, { 'Herald-Session': client.clientId }));
    assert.deepEqual((await client.connect()).json().slice(1).map((m: any) => m.data), ['for the connect']);
  });

  test('refuses a body that is not JSON, and a response already started, in words', async (t) => {
    const herald = createHerald();
    onCleanup(t, () => herald.close());
    const server = createServer((req, res) => {
      const tried = (body: unknown) => {
        try {
          herald.piggyback(req, res, body);
          return 'sent';
        } catch (error) {
          return (error as { code: string }).code;
        }
      };
      const outcomes = [tried(undefined)];
      res.writeHead(200);
      outcomes.push(tried({}));
      res.end(JSON.stringify(outcomes));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onCleanup(t, () => server.close());
    const res = await httpRequest((server.address() as AddressInfo).port, { path: '/' });
    assert.deepEqual(res.json(), ['HERALD_ERR_INVALID_DATA', 'HERALD_ERR_INVALID_REQUEST']);
  });
});
