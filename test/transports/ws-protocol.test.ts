/**
 * The server side of RFC 6455 as Herald speaks it (ws-handshake, ws-reader, ws-connection), driven
 * with hand-written bytes over a real loopback socket: frames cut anywhere, batched, fragmented,
 * broken in each way the RFC names, and the close handshake from both ends.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WebSocketTransport } from '../../src/transports/websocket.js';
import { WsPeer } from '../../src/transports/ws-connection.js';
import { MAX_FRAGMENTS } from '../../src/transports/ws-reader.js';
import type { PeerOwner } from '../../src/transports/ws-connection.js';
import { onCleanup } from '../helpers/cleanup.js';
import { waitFor } from '../helpers/wait.js';
import { ByteClient, closePayload, frame, OP } from '../helpers/ws-bytes.js';

const MAX_PAYLOAD = 100_000;

/** The server's end of one connection: what its owner was told, and the bytes its socket read. */
class Recorder implements PeerOwner {
  readonly messages: { data: string | Buffer; binary: boolean }[] = [];
  closedTimes = 0;
  bytesIn = 0;
  chunksIn = 0;

  constructor(
    readonly peer: WsPeer,
    readonly socket: Duplex,
  ) {
    peer.owner = this;
    // Counts what the socket read (a listener beside the peer's), so a test can send a byte only once the last one was read.
    socket.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      this.chunksIn++;
    });
  }

  received(data: Buffer, isBinary: boolean): void {
    const text = isBinary ? undefined : data.toString();
    this.messages.push({ data: isBinary ? Buffer.from(data) : text!, binary: isBinary });
    if (text === 'close me') this.peer.close(4000, 'as asked');
    if (text?.startsWith('echo ')) this.peer.sendText(text.slice(5));
  }

  peerClosed(): void {
    this.closedTimes++;
  }
}

async function startServer(t: { after(fn: () => unknown): void }, options: { maxPayloadBytes?: number; closeTimeoutMs?: number; maxBufferedBytes?: number } = {}) {
  const tooLarge = { count: 0 };
  const logged: { event: string; fields: Record<string, unknown> }[] = [];
  const transport = new WebSocketTransport(async () => ({ body: '[]' }) as never, {
    maxPayloadBytes: options.maxPayloadBytes ?? MAX_PAYLOAD,
    maxBufferedBytes: options.maxBufferedBytes ?? 1 << 20,
    pingIntervalMs: 60_000,
    closeTimeoutMs: options.closeTimeoutMs,
    onTooLarge: () => tooLarge.count++,
    lifecycle: (event, fields) => logged.push({ event, fields }),
    messageFormats: { plain: { encode: () => '' }, withIds: { encode: () => '' } },
  });
  const recorders: Recorder[] = [];
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    transport.accept(req, socket, head, (raw, shared) => {
      const peer = new WsPeer(raw, shared);
      recorders.push(new Recorder(peer, raw));
      return peer;
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(t, async () => {
    transport.terminateAll();
    server.close();
    await once(server, 'close');
  });
  const port = (server.address() as AddressInfo).port;
  /** A client past the handshake, and the server's recorder of it. */
  async function open(): Promise<{ client: ByteClient; server: Recorder }> {
    const { client, answer } = await ByteClient.open(port);
    onCleanup(t, () => client.destroy());
    assert.equal(answer.status, 101);
    const recorder = await waitFor('the server side of the connection', () => recorders[recorders.length - 1]);
    recorders.length = 0;
    return { client, server: recorder };
  }
  return { port, transport, open, tooLarge, logged };
}

/** Writes `bytes` one at a time, each once the server has read the one before: every byte its own chunk. */
async function sendByteByByte(client: ByteClient, server: Recorder, bytes: Buffer): Promise<void> {
  for (const byte of bytes) {
    const before = server.bytesIn;
    client.send(Buffer.from([byte]));
    await waitFor('the server to read the byte', () => server.bytesIn > before);
  }
}

const texts = (server: Recorder) => server.messages.map((m) => m.data);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** What the process holds: its heap and the buffers outside it. */
function footprint(): number {
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

describe('handshake', () => {
  test('answers the RFC sample key, with the first subprotocol offered and no extension', async (t) => {
    const { port } = await startServer(t);
    const { client, answer } = await ByteClient.open(port, { 'Sec-WebSocket-Protocol': 'chat, superchat', 'Sec-WebSocket-Extensions': 'permessage-deflate' });
    onCleanup(t, () => client.destroy());
    assert.equal(answer.status, 101);
    assert.equal(answer.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    assert.equal(answer.headers['sec-websocket-protocol'], 'chat');
    assert.equal(answer.headers['sec-websocket-extensions'], undefined);
    assert.equal(answer.headers.upgrade, 'websocket');
    const plain = await ByteClient.open(port);
    onCleanup(t, () => plain.client.destroy());
    assert.equal(plain.answer.headers['sec-websocket-protocol'], undefined, 'none offered, none answered');
  });

  for (const [name, headers, method, status] of [
    ['a request that is not a GET', {}, 'POST', 405],
    ['no Sec-WebSocket-Key', { 'Sec-WebSocket-Key': null }, 'GET', 400],
    ['a key that is not 16 bytes of base64', { 'Sec-WebSocket-Key': 'c2hvcnQ=' }, 'GET', 400],
    ['version 12', { 'Sec-WebSocket-Version': '12' }, 'GET', 400],
    ['no version', { 'Sec-WebSocket-Version': null }, 'GET', 400],
    ['an Upgrade other than websocket', { Upgrade: 'h2c' }, 'GET', 400],
    ['a subprotocol list with a duplicate', { 'Sec-WebSocket-Protocol': 'chat, chat' }, 'GET', 400],
    ['a subprotocol that is not a token', { 'Sec-WebSocket-Protocol': 'a b' }, 'GET', 400],
  ] as const) {
    test(`refuses ${name} with ${status}, naming the problem, and closes`, async (t) => {
      const { port, transport } = await startServer(t);
      const { client, answer } = await ByteClient.open(port, headers, method);
      onCleanup(t, () => client.destroy());
      assert.equal(answer.status, status);
      if (name === 'version 12') assert.equal(answer.headers['sec-websocket-version'], '13, 8');
      await client.waitClosed();
      assert.match(client.unread.toString(), /"error":"[^"]+"/);
      assert.equal(transport.openSockets, 0);
    });
  }

  test('frames sent with the upgrade request are read', async (t) => {
    const { port } = await startServer(t);
    const { client } = await ByteClient.open(port, {}, 'GET', frame(OP.text, 'echo early'));
    onCleanup(t, () => client.destroy());
    const echoed = await client.nextNonPing();
    assert.deepEqual([echoed.opcode, echoed.payload.toString()], [OP.text, 'early']);
  });
});

describe('reading frames', () => {
  test('frames cut byte by byte, at every length form, read whole', async (t) => {
    const { open } = await startServer(t);
    const { client, server } = await open();
    const long = 'λ'.repeat(200);
    await sendByteByByte(client, server, Buffer.concat([frame(OP.text, 'hello'), frame(OP.text, long), frame(OP.text, 'short in 64 bits', { lengthForm: 64 })]));
    assert.deepEqual(texts(server), ['hello', long, 'short in 64 bits']);
  });

  test('several frames in one chunk, a ping among them answered with its payload', async (t) => {
    const { open } = await startServer(t);
    const { client, server } = await open();
    client.send(Buffer.concat([frame(OP.text, 'one'), frame(OP.ping, 'are you there'), frame(OP.binary, Buffer.from([0, 1, 2])), frame(OP.text, ''), frame(OP.text, 'echo three')]));
    // The pong leaves once the chunk is read (after the echo, if one chunk held them all).
    const answers = [await client.nextNonPing('the echo or the pong'), await client.nextNonPing('the other')];
    assert.deepEqual(answers.map((f) => [f.opcode, f.payload.toString()]).sort(), [
      [OP.text, 'three'],
      [OP.pong, 'are you there'],
    ]);
    assert.deepEqual(server.messages, [
      { data: 'one', binary: false },
      { data: Buffer.from([0, 1, 2]), binary: true },
      { data: '', binary: false },
      { data: 'echo three', binary: false },
    ]);
  });

  test('16-bit and 64-bit lengths, up to the limit exactly', async (t) => {
    const { open, tooLarge } = await startServer(t);
    const { client, server } = await open();
    const medium = 'm'.repeat(300);
    const large = Buffer.alloc(70_000, 'x').toString();
    const limit = Buffer.alloc(MAX_PAYLOAD, 'y').toString();
    client.send(Buffer.concat([frame(OP.text, medium), frame(OP.text, large), frame(OP.text, limit)]));
    await waitFor('three messages', () => server.messages.length === 3);
    assert.deepEqual(texts(server), [medium, large, limit]);
    assert.equal(tooLarge.count, 0);
  });

  for (const split of ['one chunk', 'byte by byte'] as const) {
    test(`a fragmented text message, a ping between its frames, is one message (${split})`, async (t) => {
      const { open } = await startServer(t);
      const { client, server } = await open();
      const word = Buffer.from('hello wörld');
      const cut = word.indexOf(0xb6); // inside "ö": the fragments alone are not UTF-8, the message is
      const bytes = Buffer.concat([
        frame(OP.text, word.subarray(0, 3), { fin: false }),
        frame(OP.ping, 'p'),
        frame(OP.continuation, Buffer.alloc(0), { fin: false }),
        frame(OP.continuation, word.subarray(3, cut), { fin: false }),
        frame(OP.continuation, word.subarray(cut), { fin: true }),
        frame(OP.text, 'after'),
      ]);
      if (split === 'one chunk') client.send(bytes);
      else await sendByteByByte(client, server, bytes);
      await waitFor('both messages', () => server.messages.length === 2);
      assert.deepEqual(texts(server), ['hello wörld', 'after']);
      const pong = await client.nextNonPing('the pong');
      assert.deepEqual([pong.opcode, pong.payload.toString()], [OP.pong, 'p']);
    });
  }
});

describe('refusing bad frames', () => {
  const text = (payload: string) => frame(OP.text, payload);
  for (const [name, bytes, code] of [
    ['an unmasked frame', frame(OP.text, 'hi', { masked: false }), 1002],
    ['RSV1 set', frame(OP.text, 'hi', { rsv: 0x40 }), 1002],
    ['RSV3 set', frame(OP.text, 'hi', { rsv: 0x10 }), 1002],
    ['opcode 3', frame(3, 'hi'), 1002],
    ['opcode 11', frame(11, 'hi'), 1002],
    ['a ping that is not FIN', frame(OP.ping, 'p', { fin: false }), 1002],
    ['a ping of 126 bytes', frame(OP.ping, 'p'.repeat(126)), 1002],
    ['a close of 126 bytes', frame(OP.close, Buffer.concat([closePayload(1000), Buffer.alloc(124, 'r')])), 1002],
    ['a continuation with no message begun', frame(OP.continuation, 'x'), 1002],
    ['a new text message inside a fragmented one', Buffer.concat([frame(OP.text, 'a', { fin: false }), text('b')]), 1002],
    ['a close frame with a 1-byte payload', frame(OP.close, Buffer.from([3])), 1002],
    ['close code 1005', frame(OP.close, closePayload(1005)), 1002],
    ['close code 1006', frame(OP.close, closePayload(1006)), 1002],
    ['close code 999', frame(OP.close, closePayload(999)), 1002],
    ['close code 1016', frame(OP.close, closePayload(1016)), 1002],
    ['close code 2000', frame(OP.close, closePayload(2000)), 1002],
    ['close code 5000', frame(OP.close, closePayload(5000)), 1002],
    ['text that is not UTF-8', frame(OP.text, Buffer.from([0x68, 0xff, 0xfe])), 1007],
    ['a fragmented text message that ends inside a character', Buffer.concat([frame(OP.text, Buffer.from([0x68, 0xc3]), { fin: false }), frame(OP.continuation, Buffer.alloc(0))]), 1007],
    ['a close reason that is not UTF-8', frame(OP.close, Buffer.concat([closePayload(1000), Buffer.from([0xc3, 0x28])])), 1007],
    ['a 64-bit length past 2^53 - 1', frame(OP.text, 'x', { lengthForm: 64, declaredLength: 2n ** 53n }), 1009],
  ] as const) {
    test(`closes with ${code} on ${name}, reads nothing after it, and ends the socket`, async (t) => {
      const { open } = await startServer(t);
      const { client, server } = await open();
      client.send(Buffer.concat([text('before'), bytes, text('after')]));
      const closed = await client.nextClose();
      assert.equal(closed.code, code);
      assert.ok(closed.reason.length > 0, 'a reason names the problem');
      await client.waitEnded();
      assert.deepEqual(texts(server), ['before']);
    });
  }

  test('a message one byte past the limit: 1009 on its header alone (nothing of it buffered), counted', async (t) => {
    const { open, tooLarge } = await startServer(t, { maxPayloadBytes: 1000 });
    const { client, server } = await open();
    // The header of a 1001-byte frame and none of its payload: the server must not wait for it.
    client.send(frame(OP.text, 'x'.repeat(1001)).subarray(0, 8));
    assert.equal((await client.nextClose()).code, 1009);
    await client.waitEnded();
    assert.equal(tooLarge.count, 1);
    assert.deepEqual(server.messages, []);
  });

  test('fragments that add up past the limit: 1009 on the frame that passes it', async (t) => {
    const { open, tooLarge } = await startServer(t, { maxPayloadBytes: 1000 });
    const { client, server } = await open();
    client.send(frame(OP.text, 'x'.repeat(600), { fin: false }));
    await waitFor('the first fragment read', () => server.bytesIn >= 600);
    client.send(frame(OP.continuation, 'x'.repeat(401)).subarray(0, 8));
    assert.equal((await client.nextClose()).code, 1009);
    assert.equal(tooLarge.count, 1);
    assert.deepEqual(server.messages, []);
  });
});

describe('hostile senders', () => {
  test("a frame's claimed length is not allocated up front: sockets that send only headers hold only what they sent", async (t) => {
    const { open } = await startServer(t, { maxPayloadBytes: 1 << 20 });
    const sockets = await Promise.all(Array.from({ length: 40 }, () => open()));
    // Built before measuring (the test's own megabyte), each socket sent its header and 10 bytes.
    const whole = frame(OP.text, 'x'.repeat(1 << 20));
    const before = process.memoryUsage().arrayBuffers;
    for (const { client } of sockets) client.send(whole.subarray(0, 14 + 10));
    await waitFor('every header and its first bytes read', () => sockets.every(({ server }) => server.bytesIn >= 24));
    const grown = process.memoryUsage().arrayBuffers - before;
    // 40 frames claiming a megabyte each: 40 MB if allocated at the header, a few kB as received.
    assert.ok(grown < 4 << 20, `the server holds ${grown} bytes for 40 × 24 bytes received`);
    // The frame still arrives whole when the rest comes, byte-exact.
    const { client, server } = sockets[0]!;
    client.send(whole.subarray(14 + 10));
    await waitFor('the whole message', () => server.messages.length === 1);
    assert.equal(server.messages[0]!.data, 'x'.repeat(1 << 20));
  });

  test("a frame's payload sent a byte per TCP segment: the server holds about what it was sent, not a buffer per segment", async (t) => {
    const { open } = await startServer(t, { maxPayloadBytes: 1 << 20 });
    const sockets = await Promise.all(Array.from({ length: 40 }, () => open()));
    const whole = frame(OP.text, 'x'.repeat(1 << 20));
    const header = 14;
    const dribbled = 1000;
    for (const { client } of sockets) client.send(whole.subarray(0, header));
    await waitFor('every header read', () => sockets.every(({ server }) => server.bytesIn >= header));
    gc();
    const before = footprint();
    for (let at = header; at < header + dribbled; at++) {
      // Each socket's next byte once it read the last: every byte a chunk of its own.
      const read = sockets.map(({ server }) => once(server.socket, 'data'));
      for (const { client } of sockets) client.send(whole.subarray(at, at + 1));
      await Promise.all(read);
    }
    gc();
    const grown = footprint() - before;
    // 40 kB sent: a buffer object kept per byte was ~200 bytes each (8 MB); copied as it comes, a few kB a socket.
    assert.ok(grown < 1 << 20, `the server grew ${grown} bytes for 40 × ${dribbled} bytes received`);
    const { client, server } = sockets[0]!;
    client.send(whole.subarray(header + dribbled));
    await waitFor('the whole message', () => server.messages.length === 1);
    assert.equal(server.messages[0]!.data, 'x'.repeat(1 << 20));
  });

  test('a message in more fragments than MAX_FRAGMENTS is refused with 1009 (each would cost a buffer)', async (t) => {
    const { open, tooLarge } = await startServer(t);
    const { client, server } = await open();
    const pieces = [frame(OP.text, 'a', { fin: false })];
    for (let i = 1; i < MAX_FRAGMENTS; i++) pieces.push(frame(OP.continuation, 'a', { fin: false }));
    client.send(Buffer.concat(pieces));
    await waitFor('the fragments read', () => server.bytesIn >= Buffer.concat(pieces).length);
    assert.deepEqual(server.messages, [], 'no message yet, and not refused at the limit itself');
    client.send(frame(OP.continuation, 'a'));
    assert.equal((await client.nextClose()).code, 1009);
    assert.equal(tooLarge.count, 1);
    assert.deepEqual(server.messages, []);
  });

  test('pings are answered once per chunk read, the latest (RFC 6455 §5.5.3): neither a write per ping nor pongs piled up for a client that does not read', async (t) => {
    const { open } = await startServer(t, { maxBufferedBytes: 64 * 1024 });
    const { client, server } = await open();
    client.socket.pause();
    // 2.6 MB of pings, unread: a pong each would be 2.5 MB waiting in the server (and a write each).
    const count = 20_000;
    const pings = Buffer.concat(Array.from({ length: count }, (_, i) => frame(OP.ping, String(i).padEnd(125, '.'))));
    client.send(pings);
    await waitFor('every ping read', () => server.bytesIn >= pings.length);
    client.send(frame(OP.ping, 'last'));
    client.socket.resume();
    const answered: string[] = [];
    for (let got = await client.nextFrame('a pong'); ; got = await client.nextFrame('a pong')) {
      assert.equal(got.opcode, OP.pong);
      answered.push(got.payload.toString().replace(/\.+$/, ''));
      if (answered.at(-1) === 'last') break;
    }
    assert.ok(answered.length <= server.chunksIn, `${answered.length} pongs for ${server.chunksIn} chunks read`);
    assert.equal(answered.at(-2), String(count - 1), "the burst's last ping is answered");
    assert.equal(server.closedTimes, 0);
  });

  test('a message in exactly MAX_FRAGMENTS fragments is whole', async (t) => {
    const { open } = await startServer(t);
    const { client, server } = await open();
    const pieces = [frame(OP.text, 'a', { fin: false })];
    for (let i = 2; i < MAX_FRAGMENTS; i++) pieces.push(frame(OP.continuation, 'a', { fin: false }));
    pieces.push(frame(OP.continuation, 'a'));
    client.send(Buffer.concat(pieces));
    await waitFor('the message', () => server.messages.length === 1);
    assert.equal(server.messages[0]!.data, 'a'.repeat(MAX_FRAGMENTS));
  });
});

describe('closing', () => {
  test("the client's close is echoed, the socket ends, and the owner and the log are told once", async (t) => {
    const { open, logged } = await startServer(t);
    const { client, server } = await open();
    client.send(Buffer.concat([frame(OP.text, 'last'), frame(OP.close, closePayload(4001, 'bye ✓')), frame(OP.text, 'ignored')]));
    assert.deepEqual(await client.nextClose(), { code: 4001, reason: '' });
    await client.waitEnded();
    client.socket.end();
    await client.waitClosed();
    await waitFor('the owner told', () => server.closedTimes === 1);
    assert.deepEqual(texts(server), ['last']);
    const closedLines = logged.filter((l) => l.event === 'websocket closed');
    assert.equal(closedLines.length, 1);
    assert.equal(closedLines[0]!.fields.code, 4001);
    assert.equal(closedLines[0]!.fields.reason, 'bye ✓');
    assert.equal(server.closedTimes, 1);
  });

  test('a close with no code is answered with an empty close, and logged as 1005', async (t) => {
    const { open, logged } = await startServer(t);
    const { client, server } = await open();
    client.send(frame(OP.close, Buffer.alloc(0)));
    assert.deepEqual(await client.nextClose(), { code: undefined, reason: '' });
    client.socket.end();
    await client.waitClosed();
    await waitFor('the owner told', () => server.closedTimes === 1);
    assert.equal(logged.find((l) => l.event === 'websocket closed')!.fields.code, 1005);
  });

  test('our close: no data after it, and the socket ends when the client answers', async (t) => {
    const { open } = await startServer(t, { closeTimeoutMs: 60_000 });
    const { client, server } = await open();
    client.send(frame(OP.text, 'close me'));
    assert.deepEqual(await client.nextClose(), { code: 4000, reason: 'as asked' });
    assert.equal(server.peer.isOpen, false);
    assert.equal(server.peer.sendFrame(Buffer.from([0x81, 0])), false, 'no data frame after a close');
    client.send(Buffer.concat([frame(OP.text, 'too late'), frame(OP.close, closePayload(4000))]));
    await client.waitEnded();
    assert.equal(client.unread.length, 0, 'nothing was sent after the close frame');
    client.socket.end();
    await client.waitClosed();
    assert.deepEqual(texts(server), ['close me']);
    await waitFor('the owner told', () => server.closedTimes === 1);
  });

  test('our close, and a client that never answers: the socket is destroyed after the close timeout', async (t) => {
    const { open } = await startServer(t, { closeTimeoutMs: 300 });
    const { client, server } = await open();
    const asked = Date.now();
    client.send(frame(OP.text, 'close me'));
    assert.equal((await client.nextClose()).code, 4000);
    await client.waitClosed(5000);
    const waited = Date.now() - asked;
    assert.ok(waited >= 250, `destroyed after ${waited} ms, before the timeout`);
    await waitFor('the owner told', () => server.closedTimes === 1);
  });

  test('a close reason longer than 123 bytes is cut, never inside a character', async (t) => {
    const { open } = await startServer(t);
    const { client, server } = await open();
    server.peer.close(4002, 'é'.repeat(100));
    const closed = await client.nextClose();
    assert.equal(closed.code, 4002);
    assert.equal(closed.reason, 'é'.repeat(61));
  });

  test('a client that ends without a close frame: the socket closes, told once, code 1006', async (t) => {
    const { open, logged, transport } = await startServer(t);
    const { client, server } = await open();
    client.socket.end();
    await client.waitClosed();
    await waitFor('the owner told', () => server.closedTimes === 1);
    assert.equal(logged.find((l) => l.event === 'websocket closed')!.fields.code, 1006);
    assert.equal(transport.openSockets, 0);
  });

  test('terminate() cuts at once; every socket keeps an error listener', async (t) => {
    const { open } = await startServer(t);
    const { client, server } = await open();
    assert.ok(server.socket.listenerCount('error') >= 1);
    server.peer.terminate();
    await client.waitClosed();
    await waitFor('the owner told', () => server.closedTimes === 1);
  });
});
