/**
 * Event streams whose connection Herald takes from Node's HTTP machinery once the head is out
 * (transports/taken-connection.ts): they keep nothing of the request or response, write their own
 * chunk framing, see either side close, are cut when their client stops reading, end HTTP/1.0
 * responses by closing, never serve another request on the connection, and shutdown cuts them.
 * Driven over raw sockets, so that every byte on the wire is checked.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createHerald } from '../../src/server/create-herald.js';
import type { HeraldOptions } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function collected(refs: readonly WeakRef<object>[]): Promise<boolean> {
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return refs.every((ref) => ref.deref() === undefined);
}

/** Herald on a server of the test's own, which records every request and response it sees. */
async function start(t: { after(fn: () => unknown): void }, options: HeraldOptions = {}) {
  const server = createServer({ noDelay: true });
  const herald = createHerald({ publishKey: 'k'.repeat(16), ...options });
  const seen: WeakRef<IncomingMessage | ServerResponse>[] = [];
  herald.attach(server);
  // After attach, which takes over the 'request' listeners it finds.
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => seen.push(new WeakRef(req), new WeakRef(res)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  onCleanup(t, async () => {
    await herald.close();
    server.close();
  });
  return { herald, port, seen };
}

/** A raw connection that sends `request` and collects every byte back. */
async function raw(port: number, request: string, t: { after(fn: () => unknown): void }) {
  const socket = connect(port, '127.0.0.1');
  onCleanup(t, () => socket.destroy());
  let bytes = Buffer.alloc(0);
  let ended = false;
  socket.on('data', (chunk: Buffer) => (bytes = Buffer.concat([bytes, chunk])));
  socket.on('end', () => (ended = true));
  socket.write(request);
  const text = () => bytes.toString('latin1');
  const body = () => text().slice(text().indexOf('\r\n\r\n') + 4);
  return { socket, text, body, head: () => text().slice(0, text().indexOf('\r\n\r\n')), ended: () => ended };
}

/** Decodes a chunked body strictly; `complete`: the last chunk came. Throws on bad framing. */
function dechunk(body: string): { text: string; complete: boolean } {
  let text = '';
  let at = 0;
  while (at < body.length) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = Number.parseInt(body.slice(at, lineEnd), 16);
    assert.match(body.slice(at, lineEnd), /^[0-9a-f]+$/, `chunk size line at ${at}`);
    if (size === 0) {
      assert.equal(body.slice(lineEnd, lineEnd + 4), '\r\n\r\n', 'the last chunk');
      assert.equal(body.length, lineEnd + 4, 'nothing after the last chunk');
      return { text, complete: true };
    }
    if (body.length < lineEnd + 2 + size + 2) break;
    text += body.slice(lineEnd + 2, lineEnd + 2 + size);
    assert.equal(body.slice(lineEnd + 2 + size, lineEnd + 4 + size), '\r\n', 'CRLF after a chunk');
    at = lineEnd + 4 + size;
  }
  return { text, complete: false };
}

const SSE = (path: string, version = '1.1') => `GET ${path} HTTP/${version}\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`;

/** The data of each SSE event in a body read as latin1 (so that chunk sizes count bytes). */
const dataOf = (text: string) => [...Buffer.from(text, 'latin1').toString('utf8').matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!).data);

describe('event streams on taken connections', () => {
  test('an open stream keeps nothing of its request or response, and frames its chunks itself', async (t) => {
    const { herald, port, seen } = await start(t);
    const sub = await raw(port, SSE('/sub/room'), t);
    await waitFor('the subscription', () => herald.stats().patterns === 1);
    await waitFor('the preamble', () => dechunk(sub.body()).text.includes('retry:'));
    assert.match(sub.head(), /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(sub.head(), /\r\nTransfer-Encoding: chunked$/i);
    assert.equal(seen.length, 2);
    assert.equal(await collected(seen), true, 'the request or response is still reachable from the open stream');
    await herald.publish('/room', 'é1');
    await herald.publish('/room', 'two');
    await waitFor('both messages', () => dataOf(dechunk(sub.body()).text).length === 2);
    assert.deepEqual(dataOf(dechunk(sub.body()).text), ['é1', 'two']);
  });

  test('heartbeats go out as chunks', async (t) => {
    const { port } = await start(t, { heartbeatMs: 20 });
    const sub = await raw(port, SSE('/sub/quiet'), t);
    await waitFor('two heartbeats', () => (dechunk(sub.body()).text.match(/^:\n\n/gm) ?? []).length >= 2);
    assert.match(sub.body(), /\r\n3\r\n:\n\n\r\n/);
  });

  test('a client that goes away closes its session; the server ending a stream ends the response and the connection', async (t) => {
    const { herald, port } = await start(t);
    const gone = await raw(port, SSE('/sub/a'), t);
    await waitFor('the subscription', () => herald.sessionCount === 1);
    gone.socket.end();
    await waitFor('the session to close when its client half-closes', () => herald.sessionCount === 0);

    // An EventSource that opens a second stream for its session ends the first (the server's end).
    const client = new RawBayeux(port);
    await client.handshake();
    const first = await raw(port, SSE(`/bayeux/${client.clientId}`), t);
    await waitFor('the first stream', () => first.body().includes('retry:'));
    const second = await raw(port, SSE(`/bayeux/${client.clientId}`), t);
    await waitFor('the first connection to close', () => first.ended() && first.socket.destroyed);
    assert.equal(dechunk(first.body()).complete, true, 'the response ended with its last chunk');
    await waitFor('the second stream', () => second.body().includes('retry:'));
    assert.equal(second.ended(), false);
  });

  test('a request sent after a stream on its connection is never answered: the connection closes with the stream', async (t) => {
    const { herald, port } = await start(t);
    const client = new RawBayeux(port);
    await client.handshake();
    const first = await raw(port, SSE(`/bayeux/${client.clientId}`), t);
    await waitFor('the first stream', () => first.body().includes('retry:'));
    first.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    await raw(port, SSE(`/bayeux/${client.clientId}`), t);
    await waitFor('the first connection to close', () => first.socket.destroyed);
    assert.equal(dechunk(first.body()).complete, true);
    assert.doesNotMatch(first.body(), /HTTP\/1\.1/, 'no second response on the connection');
    assert.equal(herald.sessionCount, 1);
  });

  test('an HTTP/1.0 client gets the stream unchunked, ended by closing the connection', async (t) => {
    const { herald, port } = await start(t);
    const sub = await raw(port, SSE('/sub/old', '1.0'), t);
    await waitFor('the subscription', () => herald.stats().patterns === 1);
    await herald.publish('/old', 'hi');
    await waitFor('the message', () => dataOf(sub.body()).length === 1);
    assert.doesNotMatch(sub.head(), /Transfer-Encoding/i);
    assert.match(sub.body(), /^:\s+\nretry: \d+\n\n(id: .*\n)?data: /, 'no chunk framing');
    await withTimeout('shutdown', herald.close());
    await waitFor('the connection to close', () => sub.ended());
    assert.match(sub.body(), /data: .*\n\n$/s);
  });

  test('a stream whose client stops reading is cut at the bound on buffered bytes', async (t) => {
    const { herald, port } = await start(t, { maxBufferedBytes: 64 * 1024 });
    const sub = await raw(port, SSE('/sub/flood'), t);
    await waitFor('the subscription', () => herald.sessionCount === 1);
    sub.socket.pause();
    const big = 'x'.repeat(16 * 1024);
    for (let i = 0; i < 400 && herald.sessionCount > 0; i++) await herald.publish('/flood', big);
    await waitFor('the stream to be cut and its session freed', () => herald.sessionCount === 0);
  });

  test('shutdown cuts a stream whose client does not read what is owed it', async (t) => {
    const { herald, port } = await start(t, { maxBufferedBytes: 8 * 1024 * 1024, shutdownGraceMs: 300 });
    const sub = await raw(port, SSE('/sub/stuck'), t);
    await waitFor('the subscription', () => herald.sessionCount === 1);
    sub.socket.pause();
    const big = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 40; i++) await herald.publish('/stuck', big);
    let closed = false;
    sub.socket.once('close', () => (closed = true));
    await withTimeout('shutdown within its grace', herald.close(), 5_000);
    sub.socket.resume();
    await waitFor('the connection to be cut', () => closed);
  });

  test('streams with requests pipelined before or after them on their connection are served', async (t) => {
    const { herald, port } = await start(t);
    // Behind an answered request: taken as usual.
    const behind = await raw(port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n' + SSE('/sub/piped'), t);
    // With a request read behind it (owed an answer the normal way): left to Node.
    const before = await raw(port, SSE('/sub/piped') + 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n', t);
    await waitFor('the subscriptions', () => herald.sessionCount === 2);
    await herald.publish('/piped', 'p');
    await waitFor('the message on both', () => dataOf(dechunk(behind.body().slice(behind.body().indexOf('\r\n\r\n') + 4)).text).length === 1 && dataOf(dechunk(before.body()).text).length === 1);
    assert.match(behind.text(), /^HTTP\/1\.1 200 OK[\s\S]*HTTP\/1\.1 200 OK/);
    before.socket.destroy();
    await waitFor('its session to close', () => herald.sessionCount === 1);
  });
});
