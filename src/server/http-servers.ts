/**
 * @module
 * Herald on Node `http.Server`s: attached to an application's server (its other requests still go
 * to the listeners it had) or on one of its own (`listen`), with the open connections counted and
 * capped at maxConnections, and the servers closed together when Herald drains.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { LimitCounters } from '../core/limits.js';
import { refuseUpgrade, sendError } from '../transports/http.js';
import { answerClientError, LISTEN_BACKLOG } from './listen.js';
import type { Logger } from './logger.js';

export interface HttpServerParts {
  /** 0 = no cap. */
  readonly maxConnections: number;
  readonly requestTimeoutMs: number;
  readonly counters: LimitCounters;
  readonly logger: Logger;
  /** Whether per-connection debug lines go anywhere (they cost their fields on every connection). */
  readonly debugging: boolean;
  /** Serves the request if it is Herald's; false (and untouched) otherwise. */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Takes a WebSocket upgrade if it is Herald's; false (socket untouched) otherwise. */
  readonly handleUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  readonly isDraining: () => boolean;
}

export interface HttpServers {
  /** Serves Herald's paths on an existing server; its other requests go to the listeners it had. */
  attach(server: Server): void;
  /** Starts a server of Herald's own. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** TCP connections open now (those accepted past the cap are not counted). */
  readonly connectionCount: number;
  /** Drain, first step: no new connections. Node closes the idle ones. */
  stopAccepting(): void;
  /** Drain, past the grace: every connection still open is cut. */
  closeAllConnections(): void;
}

export function createHttpServers({ maxConnections, requestTimeoutMs, counters, logger, debugging, handle, handleUpgrade, isDraining }: HttpServerParts): HttpServers {
  const servers = new Set<Server>();
  /** Connections open now, counted rather than kept in a set: nothing needs them one by one. */
  let connections = 0;
  /** Connections accepted past maxConnections: their one request is answered 503. */
  const overLimit = new WeakSet<Socket | Duplex>();

  function attach(server: Server): void {
    const previous = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      // While draining, each connection closes after its response: the client's next request
      // opens a new one, which a load balancer sends to a node that is not going away.
      if (isDraining()) res.shouldKeepAlive = false;
      if (overLimit.has(req.socket)) {
        sendError(res, 503, tooManyConnections(), { 'Retry-After': '5', Connection: 'close' });
        return;
      }
      if (handle(req, res)) return;
      // Not `new URL(req.url, base)`: a target such as `//host%3C` parses as a (bad) host and throws.
      if (previous.length === 0) sendError(res, 404, `no such path: ${(req.url ?? '/').split('?')[0]!.slice(0, 200)}`);
      for (const listener of previous) listener.call(server, req, res);
    });
    const previousUpgrade = server.listeners('upgrade') as ((req: IncomingMessage, socket: Duplex, head: Buffer) => void)[];
    server.removeAllListeners('upgrade');
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (overLimit.has(req.socket)) {
        refuseUpgrade(socket, 503, tooManyConnections());
        return;
      }
      if (handleUpgrade(req, socket, head)) return;
      if (previousUpgrade.length === 0) socket.destroy();
      for (const listener of previousUpgrade) listener.call(server, req, socket, head);
    });
    server.on('connection', (socket: Socket) => admitConnection(socket));
    servers.add(server);
  }

  /**
   * Counts a new connection. One past the limit is still read, so that its request gets a 503
   * naming the limit (and the connection closes) rather than a reset the client cannot explain.
   */
  function admitConnection(socket: Socket): void {
    if (maxConnections > 0 && connections >= maxConnections) {
      counters.hit('connections');
      overLimit.add(socket);
      return;
    }
    connections++;
    // The peer: before any request is read, a proxy's forwarding headers are not known yet.
    if (debugging) logger.debug('connection opened', { peer: socket.remoteAddress });
    // One listener shared by every connection ('close' comes once): no closure held per connection.
    socket.on('close', forgetConnection);
  }

  function forgetConnection(this: Socket): void {
    connections--;
    // The address read when it opened is kept by the socket.
    if (debugging) logger.debug('connection closed', { peer: this.remoteAddress });
  }

  function tooManyConnections(): string {
    return `too many connections (at most ${maxConnections}): try again later`;
  }

  async function listen(port = 8080, host = '127.0.0.1'): Promise<AddressInfo> {
    const timeoutMs = requestTimeoutMs;
    // Node checks these timeouts only every connectionsCheckingInterval (30 s by default).
    const server = createServer({ noDelay: true, requestTimeout: timeoutMs, headersTimeout: timeoutMs, connectionsCheckingInterval: Math.min(1000, Math.max(25, timeoutMs / 4)) });
    server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => answerClientError(error, socket, counters));
    attach(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  return {
    attach,
    listen,
    get connectionCount() {
      return connections;
    },
    stopAccepting() {
      for (const server of servers) server.close();
    },
    closeAllConnections() {
      for (const server of servers) server.closeAllConnections();
    },
  };
}
