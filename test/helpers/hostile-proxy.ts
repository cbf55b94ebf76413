/**
 * A TCP proxy on loopback in front of an HTTP server, behaving like the networks that break
 * Comet: one that cuts every request it has held for `cutAfterMs` (a proxy's or a mobile
 * gateway's timeout: the connection is cut that long after the client last sent anything, so a
 * held long-poll, a WebSocket waiting on its held connect and an event stream all die at that
 * age), and one that buffers streamed response bodies (chunked, close-delimited, or after a
 * `101`) until the response ends, as some corporate proxies and virus scanners do; bodies of a
 * known length pass as they come. It counts the requests it carries.
 */
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { onCleanup } from './cleanup.js';
import { proxySockets } from './proxy-sockets.js';

export interface HostileProxyOptions {
  /** Cut a connection this long after the client last sent bytes on it (0: never). */
  cutAfterMs?: number;
  /** Hold streamed response bodies until the response ends. */
  buffer?: boolean;
}

export interface HostileProxy {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** Whether it cuts held requests now (set false to heal the network). */
  cutting: boolean;
  /** When each Bayeux connect went through (POST JSON or a JSONP URL), ms since the epoch. */
  readonly connects: number[];
  /** Connections cut for being held too long. */
  cuts: number;
}

const CONNECT_MARKS = [/"\/meta\/connect"/g, /%22%2Fmeta%2Fconnect%22/gi];

export async function startHostileProxy(t: { after(fn: () => unknown): void }, targetPort: number, options: HostileProxyOptions): Promise<HostileProxy> {
  const sockets = proxySockets();
  const server = createServer((client) => {
    const upstream = sockets.pair(client, targetPort);
    let timer: NodeJS.Timeout | undefined;
    const armCut = () => {
      clearTimeout(timer);
      if (options.cutAfterMs === undefined || options.cutAfterMs <= 0) return;
      timer = setTimeout(() => {
        if (!proxy.cutting) return;
        proxy.cuts++;
        client.destroy();
        upstream.destroy();
      }, options.cutAfterMs);
      timer.unref();
    };
    client.once('close', () => clearTimeout(timer));
    client.on('data', (chunk: Buffer) => {
      armCut();
      const text = chunk.toString('latin1');
      const seen = CONNECT_MARKS.reduce((count, mark) => count + (text.match(mark)?.length ?? 0), 0);
      for (let i = 0; i < seen; i++) proxy.connects.push(Date.now());
      upstream.write(chunk);
    });
    client.on('end', () => upstream.end());
    if (options.buffer === true) {
      const responses = new ResponseBuffer((bytes) => client.write(bytes));
      upstream.on('data', (chunk: Buffer) => responses.push(chunk));
      upstream.on('end', () => {
        responses.end();
        client.end();
      });
    } else {
      upstream.pipe(client);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const proxy: HostileProxy = { port, origin: `http://127.0.0.1:${port}`, cutting: true, connects: [], cuts: 0 };
  onCleanup(t, () => {
    sockets.destroyAll();
    server.close();
  });
  return proxy;
}

/**
 * Passes each response head at once, and its body when it ends: a body of known length as it
 * comes (it ends by itself), a chunked one at its last chunk, anything else (close-delimited,
 * or a connection switched to another protocol) never until the upstream closes.
 */
class ResponseBuffer {
  #pending = Buffer.alloc(0);
  /** Where the current response stands: reading its head, or its body in one of three ways. */
  #state: { kind: 'head' } | { kind: 'length'; left: number } | { kind: 'chunked'; held: Buffer[] } | { kind: 'until-close' } = { kind: 'head' };

  constructor(private readonly write: (bytes: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.#pending = Buffer.concat([this.#pending, chunk]);
    while (this.#step());
  }

  end(): void {
    if (this.#pending.length > 0) this.write(this.#pending);
    this.#pending = Buffer.alloc(0);
  }

  /** Consumes what it can of the pending bytes; true when it should be called again. */
  #step(): boolean {
    const state = this.#state;
    if (state.kind === 'until-close' || this.#pending.length === 0) return false;
    if (state.kind === 'head') {
      const end = this.#pending.indexOf('\r\n\r\n');
      if (end < 0) return false;
      const head = this.#take(end + 4);
      this.write(head);
      const text = head.toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1]);
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text);
      if (status >= 100 && status < 200 && status !== 101) this.#state = { kind: 'head' };
      else if (status === 204 || status === 304) this.#state = { kind: 'head' };
      else if (length !== null) this.#state = { kind: 'length', left: Number(length[1]) };
      else if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(text)) this.#state = { kind: 'chunked', held: [] };
      else this.#state = { kind: 'until-close' };
      if (this.#state.kind === 'length' && this.#state.left === 0) this.#state = { kind: 'head' };
      return true;
    }
    if (state.kind === 'length') {
      const body = this.#take(Math.min(state.left, this.#pending.length));
      this.write(body);
      state.left -= body.length;
      if (state.left === 0) this.#state = { kind: 'head' };
      return true;
    }
    // Chunked: each chunk is a hex size line, the bytes and CRLF; size 0 then CRLF ends it.
    const lineEnd = this.#pending.indexOf('\r\n');
    if (lineEnd < 0) return false;
    const size = parseInt(this.#pending.subarray(0, lineEnd).toString('latin1'), 16);
    const whole = size === 0 ? lineEnd + 4 : lineEnd + 2 + size + 2;
    if (this.#pending.length < whole) return false;
    state.held.push(this.#take(whole));
    if (size === 0) {
      this.write(Buffer.concat(state.held));
      this.#state = { kind: 'head' };
    }
    return true;
  }

  #take(n: number): Buffer {
    const taken = this.#pending.subarray(0, n);
    this.#pending = this.#pending.subarray(n);
    return taken;
  }
}
