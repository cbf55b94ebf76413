/**
 * A held long-poll's connection is taken from Node for the hold and written by hand
 * (src/transports/held-connection.ts): the reply must be the bytes Node would write, and the
 * connection must go on serving requests after it (keep-alive), lose none sent during the hold
 * (pipelining), and close when the client, the keep-alive timeout or a drain says so.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { describe, test } from 'node:test';
import { createHerald } from '../../src/server/create-herald.js';
import type { Herald, HeraldOptions } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

/** A server-side connection, with the parser Node's HTTP server gives it (null while taken). */
type ServerSocket = Socket & { parser?: unknown };

interface Rig {
  herald: Herald;
  server: Server;
  port: number;
  /** The server side of every connection accepted so far. */
  accepted: ServerSocket[];
}

/** `attach: false`: the application's own server passes requests to `herald.handle` (and keeps listening when Herald closes). */
async function startRig(t: { after(fn: () => unknown): void }, options: HeraldOptions = {}, configure: (server: Server) => void = () => {}, attach = true): Promise<Rig> {
  const server = createServer();
  configure(server);
  const herald = createHerald({ timeoutMs: 30_000, ...options });
  if (attach) herald.attach(server);
  else server.on('request', (req, res) => herald.handle(req, res) || res.writeHead(404).end());
  const accepted: ServerSocket[] = [];
  server.on('connection', (socket: ServerSocket) => accepted.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(t, async () => {
    await herald.close();
    server.closeAllConnections();
    server.close();
  });
  return { herald, server, port: (server.address() as AddressInfo).port, accepted };
}

interface RawReply {
  /** The head as sent, CRLFs included. */
  head: string;
  status: number;
  headers: Map<string, string[]>;
  body: string;
}

/** One client connection, kept alive: writes raw requests, reads Content-Length-framed replies in order. */
class KeptAlive {
  readonly socket: Socket;
  #buffer = Buffer.alloc(0);
  #waiting: (() => void) | undefined;
  closed = false;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('error', () => {});
    this.socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#waiting?.();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.#waiting?.();
    });
  }

  static post(body: unknown, headers: Record<string, string> = {}): string {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    const lines = Object.entries({ 'Content-Type': 'application/json', ...headers }).map(([name, value]) => `${name}: ${value}\r\n`);
    return `POST /bayeux HTTP/1.1\r\nHost: x\r\n${lines.join('')}Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
  }

  send(raw: string): void {
    this.socket.write(raw);
  }

  /** The next whole reply on the connection. */
  async reply(): Promise<RawReply> {
    return withTimeout('a reply', this.#next());
  }

  async #next(): Promise<RawReply> {
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = this.#buffer.subarray(0, end + 4).toString('latin1');
        const headers = new Map<string, string[]>();
        for (const line of head.split('\r\n').slice(1, -2)) {
          const colon = line.indexOf(':');
          const name = line.slice(0, colon).toLowerCase();
          headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
        }
        const length = Number(headers.get('content-length')?.[0]);
        if (this.#buffer.length >= end + 4 + length) {
          const body = this.#buffer.subarray(end + 4, end + 4 + length).toString('utf8');
          this.#buffer = this.#buffer.subarray(end + 4 + length);
          return { head, status: Number(head.split(' ')[1]), headers, body };
        }
      }
      if (this.closed) throw new Error(`connection closed; had ${JSON.stringify(this.#buffer.toString('latin1'))}`);
      await new Promise<void>((resolve) => (this.#waiting = resolve));
    }
  }

  async whenClosed(): Promise<void> {
    if (!this.closed) await withTimeout('the connection to close', once(this.socket, 'close'));
  }
}

/** A session opened over RawBayeux (its own connections), subscribed to `channel`: its connects are held. */
async function openSession(port: number, channel: string, cookie?: string): Promise<RawBayeux> {
  const client = new RawBayeux(port);
  client.cookie = cookie;
  await client.open();
  await client.subscribe(channel);
  return client;
}

/** The server side of `connection`. */
function serverSocketOf(rig: Rig, connection: KeptAlive): ServerSocket | undefined {
  return rig.accepted.find((socket) => socket.remotePort === connection.socket.localPort && !socket.destroyed);
}

/** Waits until the server side of `connection` has been taken from Node (it has no parser then). */
function taken(rig: Rig, connection: KeptAlive): Promise<unknown> {
  return waitFor('the held connection to be taken from Node', () => serverSocketOf(rig, connection)?.parser === null);
}

describe('a held long-poll taken from Node', () => {
  test('answers with the bytes Node writes, CORS and JSONP included', async (t) => {
    // A server timeout keeps Node's own path (nothing is taken); the same requests otherwise.
    const plain = await startRig(t, { allowedOrigins: ['https://app.example'] }, (server) => server.setTimeout(600_000));
    const held = await startRig(t, { allowedOrigins: ['https://app.example'] });
    const heads: string[][] = [];
    for (const rig of [plain, held]) {
      const client = await openSession(rig.port, '/heads');
      const connection = new KeptAlive(rig.port);
      const cors = { Origin: 'https://app.example', Cookie: client.cookie! };
      connection.send(KeptAlive.post([client.connectMessage({ id: 'c1' })], cors));
      await waitFor('the connect to be held', () => rig.herald.stats().heldConnects === 1);
      assert.equal(serverSocketOf(rig, connection)!.parser === null, rig === held, 'taken only where Node has no server timeout');
      await rig.herald.publish('/heads', { n: 'é' });
      const json = await connection.reply();
      const query = `message=${encodeURIComponent(JSON.stringify([client.connectMessage({ id: 'c2' })]))}&jsonp=cb`;
      connection.send(`GET /bayeux?${query} HTTP/1.1\r\nHost: x\r\nCookie: ${client.cookie}\r\n\r\n`);
      await waitFor('the JSONP connect to be held', () => rig.herald.stats().heldConnects === 1);
      await rig.herald.publish('/heads', 'two');
      const jsonp = await connection.reply();
      heads.push([json, jsonp].map((reply) => reply.head.replace(/^Date: .*$/m, 'Date: -') + reply.body));
      connection.socket.destroy();
    }
    assert.deepEqual(heads[1], heads[0]);
    assert.match(heads[1]![0]!, /^HTTP\/1\.1 200 OK\r\nAccess-Control-Allow-Origin: https:\/\/app\.example\r\n[^]*Content-Type: application\/json; charset=utf-8\r\nContent-Length: \d+\r\n[^]*Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n\[/);
    assert.match(heads[1]![1]!, /Content-Disposition: attachment; filename=f\.txt\r\n[^]*\r\n\r\n\/\*\*\/cb\(/);
  });

  test('serves connect after connect on one kept-alive connection, taken for each hold', async (t) => {
    const rig = await startRig(t);
    const client = await openSession(rig.port, '/twice');
    const connection = new KeptAlive(rig.port);
    for (const n of [1, 2, 3]) {
      connection.send(KeptAlive.post([client.connectMessage()], { Cookie: client.cookie! }));
      await waitFor('the connect to be held', () => rig.herald.stats().heldConnects === 1);
      await taken(rig, connection);
      // Node's keep-alive timer from the reply before, cleared when this request came, is let go.
      const socket = serverSocketOf(rig, connection)! as unknown as Record<symbol, unknown>;
      assert.equal(socket[Object.getOwnPropertySymbols(socket).find((key) => key.description === 'timeout')!], null, `spent timer kept (hold ${n})`);
      await rig.herald.publish('/twice', n);
      const reply = await connection.reply();
      assert.equal(reply.status, 200);
      assert.deepEqual(JSON.parse(reply.body).slice(1), [{ channel: '/twice', data: n }]);
      assert.deepEqual(reply.headers.get('connection'), ['keep-alive']);
    }
    // Back with Node between holds: an ordinary request on the same connection.
    connection.send('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal((await connection.reply()).status, 200);
    assert.equal(rig.accepted.length, 4, 'handshake, connect, subscribe (one connection each), then the kept-alive one');
  });

  test('a request pipelined behind a held connect ends the hold at once and is served after it', async (t) => {
    const rig = await startRig(t);
    const client = await openSession(rig.port, '/piped');
    const connection = new KeptAlive(rig.port);
    connection.send(KeptAlive.post([client.connectMessage({ id: 'held' })], { Cookie: client.cookie! }));
    await taken(rig, connection);
    // The publish arrives in pieces, as TCP may split it: nothing of it may be lost.
    const publish = KeptAlive.post([{ channel: '/piped', clientId: client.clientId, data: 'behind', id: 'pub' }], { Cookie: client.cookie! });
    connection.send(publish.slice(0, 20));
    const first = await connection.reply();
    assert.deepEqual(JSON.parse(first.body).map((m: { id?: string; successful?: boolean }) => [m.id, m.successful]), [['held', true]]);
    connection.send(publish.slice(20));
    const second = await connection.reply();
    assert.deepEqual(JSON.parse(second.body).map((m: { id?: string; successful?: boolean }) => [m.id, m.successful]), [['pub', true]]);
    // The publish reached the session: the next connect carries it.
    connection.send(KeptAlive.post([client.connectMessage()], { Cookie: client.cookie! }));
    assert.deepEqual(JSON.parse((await connection.reply()).body).slice(1), [{ channel: '/piped', data: 'behind' }]);
  });

  test('a request pipelined in the same write as the connect is served the ordinary way', async (t) => {
    const rig = await startRig(t);
    const client = await openSession(rig.port, '/same-write');
    const connection = new KeptAlive(rig.port);
    const connect = KeptAlive.post([client.connectMessage({ id: 'held' })], { Cookie: client.cookie! });
    connection.send(connect + 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor('the connect to be held', () => rig.herald.stats().heldConnects === 1);
    assert.notEqual(serverSocketOf(rig, connection)!.parser, null, 'not taken: Node already read the next request');
    await rig.herald.publish('/same-write', 'x');
    assert.deepEqual(JSON.parse((await connection.reply()).body).slice(1), [{ channel: '/same-write', data: 'x' }]);
    assert.equal((await connection.reply()).status, 200);
  });

  test('a client that closes during the hold releases it, and its browser slot', async (t) => {
    const rig = await startRig(t);
    const first = await openSession(rig.port, '/gone');
    const connection = new KeptAlive(rig.port);
    connection.send(KeptAlive.post([first.connectMessage()], { Cookie: first.cookie! }));
    await taken(rig, connection);
    connection.socket.end();
    await waitFor('the hold to be released', () => rig.herald.stats().heldConnects === 0);
    // Another tab of the same browser may hold its connect now (the slot was freed).
    const second = await openSession(rig.port, '/gone', first.cookie);
    const held = second.connect();
    await waitFor('the second tab to be held', () => rig.herald.stats().heldConnects === 1);
    await rig.herald.publish('/gone', 'here');
    const replies = (await held).json();
    assert.equal(replies[0].successful, true);
    assert.equal(replies[0].advice?.reconnect, 'retry');
    assert.deepEqual(replies.slice(1), [{ channel: '/gone', data: 'here' }]);
  });

  test('after its reply, an idle connection closes at the keep-alive timeout', async (t) => {
    const rig = await startRig(t, {}, (server) => (server.keepAliveTimeout = 100));
    const client = await openSession(rig.port, '/idle');
    const connection = new KeptAlive(rig.port);
    connection.send(KeptAlive.post([client.connectMessage()], { Cookie: client.cookie! }));
    await taken(rig, connection);
    await rig.herald.publish('/idle', 1);
    assert.deepEqual((await connection.reply()).headers.get('keep-alive'), ['timeout=0']);
    await connection.whenClosed();
  });

  test('a drain answers a held connect, closes the connection after it, and closes idle ones', async (t) => {
    const rig = await startRig(t, { drainWindowMs: 0, shutdownGraceMs: 5_000 });
    const client = await openSession(rig.port, '/drain');
    const idle = new KeptAlive(rig.port);
    idle.send(KeptAlive.post([client.connectMessage()], { Cookie: client.cookie! }));
    await taken(rig, idle);
    await rig.herald.publish('/drain', 'before');
    assert.equal((await idle.reply()).status, 200);
    // Answered, kept alive: idle, and still not Node's.
    assert.equal(serverSocketOf(rig, idle)!.parser, null);
    const other = await openSession(rig.port, '/drain');
    const held = new KeptAlive(rig.port);
    held.send(KeptAlive.post([other.connectMessage()], { Cookie: other.cookie! }));
    await taken(rig, held);
    const closing = rig.herald.close();
    const reply = await held.reply();
    assert.deepEqual(reply.headers.get('connection'), ['close']);
    const [connectReply] = JSON.parse(reply.body);
    assert.equal(connectReply.advice?.reconnect, 'handshake');
    await held.whenClosed();
    await idle.whenClosed();
    await withTimeout('the drain to end', closing);
  });

  test('closing Herald inside an application server (which goes on listening) answers held connects and ends within moments', async (t) => {
    const rig = await startRig(t, { drainWindowMs: 0, shutdownGraceMs: 5_000 }, () => {}, false);
    const client = await openSession(rig.port, '/handled');
    const connection = new KeptAlive(rig.port);
    connection.send(KeptAlive.post([client.connectMessage()], { Cookie: client.cookie! }));
    await taken(rig, connection);
    const started = performance.now();
    const closing = rig.herald.close();
    const reply = await connection.reply();
    assert.deepEqual(reply.headers.get('connection'), ['close']);
    await connection.whenClosed();
    await withTimeout('the drain to end', closing);
    assert.ok(performance.now() - started < 2_000, `drain took ${Math.round(performance.now() - started)} ms: it waited for an answered connection`);
  });
});
