/**
 * Batch publish and idempotency keys on one node, through each way in: `POST /pub` (a JSON array)
 * and `POST /pub/{channel}` with `Idempotency-Key`, `herald.publishBatch()` / `herald.publish(…,
 * {idempotencyKey})`, and `herald publish --batch` / `--idempotency-key`. Real server, real SSE
 * subscribers, real CLI processes; a publisher that cuts its connection before reading the answer.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { runCli } from '../helpers/cli.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream, postJson } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const KEY = 'batch-publish-test-key';
const BACKEND = { Authorization: `Bearer ${KEY}` };
const cli = (args: string[], stdin?: string) => runCli(args, KEY, stdin);
type Hookable = { after(fn: () => unknown): void };

function start(t: Hookable, options: Record<string, unknown> = {}) {
  return startHerald(t, { publishKey: KEY, jwtSecret: SECRET, ...options });
}

/** An SSE subscriber: the messages it received so far, as `{id, channel, data}`. */
async function subscriber(port: number, channel: string, t: Hookable): Promise<() => { id: string; channel: string; data: unknown }[]> {
  const stream = await openStream(port, `/sub${channel}?token=${await token(['/**'])}`, { Accept: 'text/event-stream' }, t);
  return () =>
    stream
      .text()
      .split('\n')
      .filter((line) => line.startsWith('data: {"id"'))
      .map((line) => JSON.parse(line.slice(6)));
}

function token(publish: string[]): Promise<string> {
  return new SignJWT({ subscribe: ['/**'], publish }).setProtectedHeader({ alg: 'HS256' }).setSubject('client').setExpirationTime('1h').sign(Buffer.from(SECRET));
}

async function history(port: number, channel: string): Promise<unknown[]> {
  return (await httpRequest(port, { path: `/history${channel}`, headers: BACKEND })).json().messages.map((message: { data: unknown }) => message.data);
}

/**
 * Sends a whole request on a raw socket and never reads the answer: a backend whose timeout
 * fired. `cut()` ends the connection.
 */
async function sendAndForget(port: number, path: string, body: string, headers: Record<string, string> = {}): Promise<{ cut(): void }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const head = Object.entries({ Host: `127.0.0.1:${port}`, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), ...BACKEND, ...headers }).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.write(`POST ${path} HTTP/1.1\r\n${head.join('')}\r\n${body}`);
  socket.on('error', () => {});
  return { cut: () => socket.destroy() };
}

describe('batch publish', () => {
  test('over HTTP: many messages in one request reach their subscribers, in order per channel, each with its id', async (t) => {
    const { port } = await start(t);
    const onA = await subscriber(port, '/b/a', t);
    const onB = await subscriber(port, '/b/b', t);
    const batch = [1, 2, 3, 4, 5, 6].map((n) => ({ channel: n % 2 === 0 ? '/b/b' : '/b/a', data: { n } }));
    const answer = await postJson(port, '/pub', batch, BACKEND);
    assert.equal(answer.status, 200, answer.text);
    const { published, failed, results } = answer.json();
    assert.deepEqual([published, failed], [6, 0]);
    assert.deepEqual(results.map((result: { status: number; channel: string }) => [result.status, result.channel]), batch.map((item) => [200, item.channel]));
    assert.equal(results[0].subscribers, 1, 'each result counts the subscribers it reached');
    await waitFor('both subscribers have theirs', () => onA().length === 3 && onB().length === 3);
    assert.deepEqual(onA().map((message) => message.data), [{ n: 1 }, { n: 3 }, { n: 5 }]);
    assert.deepEqual(onB().map((message) => message.id), [results[1].id, results[3].id, results[5].id]);
  });

  test('one bad item among good ones: each bad one is answered with a 4xx naming its problem, the good ones are published', async (t) => {
    const { port } = await start(t, { maxMessageBytes: 100 });
    const batch = [
      { channel: '/good', data: 1 },
      { channel: 'no-slash', data: 2 },
      { channel: '/good', data: 'x'.repeat(200) },
      { channel: '/good' },
      { channel: '/good', data: 3, colour: 'red' },
      'not an object',
      { channel: '/good', data: 4, idempotencyKey: 'has spaces in it' },
      { channel: '/meta/handshake', data: 5 },
      { channel: '/good', data: 6 },
    ];
    const answer = await postJson(port, '/pub', batch, BACKEND);
    assert.equal(answer.status, 200);
    const { published, failed, results } = answer.json();
    assert.deepEqual([published, failed], [2, 7]);
    assert.deepEqual(results.map((result: { status: number }) => result.status), [200, 400, 413, 400, 400, 400, 400, 400, 200]);
    const errors = results.map((result: { error?: string }) => result.error ?? '');
    assert.match(errors[1], /not a broadcast channel/);
    assert.match(errors[2], /message too large/);
    assert.match(errors[3], /data is required/);
    assert.match(errors[4], /"colour" is not a field/);
    assert.match(errors[5], /must be an object/);
    assert.match(errors[6], /idempotency key must be/);
    assert.deepEqual(await history(port, '/good'), [1, 6]);
  });

  test('refusals of the whole batch are 4xx naming the problem; too many messages is counted', async (t) => {
    const { port, herald } = await start(t, { maxBatchMessages: 3, maxBodyBytes: 2048 });
    const refusals: [string, Promise<{ status: number; text: string }>, number, RegExp][] = [
      ['not an array', postJson(port, '/pub', { channel: '/a', data: 1 }, BACKEND), 400, /send a JSON array/],
      ['empty', postJson(port, '/pub', [], BACKEND), 400, /the batch is empty/],
      ['not JSON', postJson(port, '/pub', '[{"channel":', BACKEND), 400, /JSON/],
      ['too many', postJson(port, '/pub', [1, 2, 3, 4].map((n) => ({ channel: '/a', data: n })), BACKEND), 413, /at most 3 \(--max-batch\)/],
      ['too big', postJson(port, '/pub', [{ channel: '/a', data: 'x'.repeat(3000) }], BACKEND), 413, /exceeds 2048 bytes/],
      ['as text', httpRequest(port, { method: 'POST', path: '/pub', headers: { ...BACKEND, 'Content-Type': 'text/plain' }, body: '[]' }), 415, /Content-Type: application\/json/],
      ['GET', httpRequest(port, { path: '/pub', headers: BACKEND }), 405, /POST a JSON array/],
      ['no key', postJson(port, '/pub', [{ channel: '/a', data: 1 }, { channel: '/b', data: 2 }]), 401, /missing API key/],
      ['wrong key', postJson(port, '/pub', [{ channel: '/a', data: 1 }], { Authorization: 'Bearer wrong' }), 403, /wrong API key/],
    ];
    for (const [what, answer, status, error] of refusals) {
      const { status: got, text } = await answer;
      assert.equal(got, status, `${what}: ${text}`);
      assert.match(text, error, what);
    }
    assert.equal(herald.stats().limits.batch_messages, 1);
    assert.deepEqual(await history(port, '/a'), [], 'nothing was published');
  });

  test("a token publishes the items of the channels it may publish on; the others are refused one by one (403)", async (t) => {
    const { port } = await start(t);
    const jwt = await token(['/mine/**']);
    const answer = await postJson(port, '/pub', [{ channel: '/mine/a', data: 1 }, { channel: '/theirs', data: 2 }, { channel: '/mine/b', data: 3 }], { Authorization: `Bearer ${jwt}` });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.json().results.map((result: { status: number }) => result.status), [200, 403, 200]);
    assert.match(answer.json().results[1].error, /may not publish on \/theirs/);
  });
});

describe('idempotency keys', () => {
  test('a batch sent again answers the same ids, marked duplicate, and its subscribers get each message once', async (t) => {
    const { port } = await start(t);
    const received = await subscriber(port, '/orders', t);
    const batch = [1, 2, 3].map((n) => ({ channel: '/orders', data: n, idempotencyKey: `order-${n}` }));
    const first = (await postJson(port, '/pub', batch, BACKEND)).json();
    // A retry that adds a message the first attempt did not carry: only that one is new.
    const retried = (await postJson(port, '/pub', [...batch, { channel: '/orders', data: 4, idempotencyKey: 'order-4' }], BACKEND)).json();
    assert.deepEqual(retried.results.slice(0, 3).map((result: { id: string }) => result.id), first.results.map((result: { id: string }) => result.id));
    assert.deepEqual(retried.results.map((result: { duplicate?: boolean }) => result.duplicate === true), [true, true, true, false]);
    assert.deepEqual(retried.results.map((result: { subscribers: number }) => result.subscribers), [0, 0, 0, 1]);
    await waitFor('four messages', () => received().length === 4);
    assert.deepEqual(await history(port, '/orders'), [1, 2, 3, 4]);
  });

  test('a publisher that cut its connection before reading the answer retries: the message took effect once, and the retry learns its id', async (t) => {
    const { port } = await start(t);
    const received = await subscriber(port, '/pay', t);
    const batch = JSON.stringify([{ channel: '/pay', data: 'charge', idempotencyKey: 'charge-77' }]);
    const lost = await sendAndForget(port, '/pub', batch);
    await waitFor('the first attempt was published', () => received().length === 1);
    lost.cut();
    const retry = await postJson(port, '/pub', batch, BACKEND);
    assert.equal(retry.status, 200);
    assert.deepEqual(retry.json().results[0], { status: 200, channel: '/pay', id: received()[0]!.id, subscribers: 0, duplicate: true });
    // A single publish with the same key (POST /pub/{channel}, Idempotency-Key) is the same message.
    const single = await httpRequest(port, { method: 'POST', path: '/pub/pay', headers: { ...BACKEND, 'Content-Type': 'application/json', 'Idempotency-Key': 'charge-77' }, body: '"charge"' });
    assert.deepEqual(single.json(), { id: received()[0]!.id, channel: '/pay', subscribers: 0, duplicate: true });
    assert.deepEqual(await history(port, '/pay'), ['charge']);
    assert.equal(received().length, 1);
  });

  test('on a single publish: the Idempotency-Key header; a key used for another channel is a 409, a bad key a 400', async (t) => {
    const { port } = await start(t);
    const publish = (channel: string, key: string) =>
      httpRequest(port, { method: 'POST', path: `/pub${channel}`, headers: { ...BACKEND, 'Content-Type': 'application/json', 'Idempotency-Key': key }, body: '{"v":1}' });
    const first = await publish('/k', 'key-1');
    assert.equal(first.status, 200);
    assert.equal(first.json().duplicate, undefined);
    const again = await publish('/k', 'key-1');
    assert.deepEqual(again.json(), { id: first.json().id, channel: '/k', subscribers: 0, duplicate: true });
    const conflict = await publish('/other', 'key-1');
    assert.equal(conflict.status, 409);
    assert.match(conflict.json().error, /used for a publish to "\/k", not "\/other"/);
    const bad = await publish('/k', 'x'.repeat(201));
    assert.equal(bad.status, 400);
    assert.match(bad.json().error, /1 to 200 printable ASCII/);
    assert.deepEqual(await history(port, '/k'), [{ v: 1 }]);
  });
});

describe('from code and the CLI', () => {
  test('herald.publishBatch() and herald.publish(…, {idempotencyKey}) answer as HTTP does', async (t) => {
    const { herald, port } = await start(t);
    const results = await herald.publishBatch([{ channel: '/code', data: 1, idempotencyKey: 'c-1' }, { channel: 'bad', data: 2 }, { channel: '/code', data: 3 }]);
    assert.deepEqual(results.map((result) => result.status), [200, 400, 200]);
    const again = await herald.publish('/code', 1, { idempotencyKey: 'c-1' });
    assert.deepEqual([again.id, again.duplicate], [(results[0] as { id: string }).id, true]);
    await assert.rejects(herald.publish('/elsewhere', 1, { idempotencyKey: 'c-1' }), { code: 'HERALD_ERR_IDEMPOTENCY_CONFLICT' });
    await assert.rejects(herald.publish('/code', 1, { idempotencyKey: '' }), { code: 'HERALD_ERR_INVALID_REQUEST' });
    await assert.rejects(herald.publishBatch([]), { code: 'HERALD_ERR_INVALID_REQUEST', message: /empty/ });
    await assert.rejects(herald.publishBatch(Array.from({ length: 101 }, () => ({ channel: '/a', data: 1 }))), { message: /at most 100/ });
    assert.deepEqual(await history(port, '/code'), [1, 3]);
  });

  test('past --idempotency-max-keys the oldest key is forgotten before its window ends, and counted: a retry with it publishes again', async (t) => {
    const { herald, port } = await start(t, { idempotencyMaxKeys: 2 });
    for (const key of ['k-1', 'k-2']) await herald.publish('/keys', key, { idempotencyKey: key });
    const forgotten = async () => Number(/^herald_idempotency_keys_forgotten_total (\d+)$/m.exec((await httpRequest(port, { path: '/metrics', headers: BACKEND })).text)?.[1]);
    assert.equal(await forgotten(), 0);
    await herald.publish('/keys', 'k-3', { idempotencyKey: 'k-3' });
    assert.equal(await forgotten(), 1, 'k-1 went to make room, inside its window');
    assert.equal((await herald.publish('/keys', 'k-3', { idempotencyKey: 'k-3' })).duplicate, true, 'the newest are kept');
    assert.notEqual((await herald.publish('/keys', 'k-1', { idempotencyKey: 'k-1' })).duplicate, true, 'the forgotten one publishes again');
    assert.deepEqual(await history(port, '/keys'), ['k-1', 'k-2', 'k-3', 'k-1']);
  });

  test('herald publish --batch FILE|- and --idempotency-key', async (t) => {
    const { port, url } = await start(t);
    const file = join(tmpdir(), `herald-batch-${process.pid}-${port}.json`);
    t.after(() => rm(file, { force: true }));
    await writeFile(file, JSON.stringify([{ channel: '/cli', data: 'a', idempotencyKey: 'cli-a' }, { channel: '/cli', data: 'b' }]));
    const done = await cli(['publish', '--batch', file, '--url', url]);
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual(JSON.parse(done.stdout).results.map((result: { status: number }) => result.status), [200, 200]);
    const partly = await cli(['publish', '--batch', '-', '--url', url], JSON.stringify([{ channel: '/cli', data: 'a', idempotencyKey: 'cli-a' }, { channel: 'nope', data: 'c' }]));
    assert.equal(partly.code, 1, 'an item not published fails the command');
    assert.match(partly.stderr, /1 of 2 messages were not published/);
    assert.equal(JSON.parse(partly.stdout).results[0].duplicate, true);
    for (let i = 0; i < 2; i++) {
      const single = await cli(['publish', '/cli', '"d"', '--idempotency-key', 'cli-d', '--url', url]);
      assert.equal(single.code, 0, single.stderr);
      assert.equal(JSON.parse(single.stdout).duplicate, i === 0 ? undefined : true);
    }
    const misuse = await cli(['publish', '--batch', file, '--idempotency-key', 'k', '--url', url]);
    assert.equal(misuse.code, 2);
    assert.match(misuse.stderr, /--idempotency-key names one message/);
    assert.deepEqual(await history(port, '/cli'), ['a', 'b', 'd']);
  });
});
