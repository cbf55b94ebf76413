/**
 * What the tests' TCP proxies (cut-proxy.ts, hostile-proxy.ts) share: the sockets they hold, and a
 * client joined to a fresh upstream connection, each closing the other.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export function proxySockets() {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  return {
    /** Connects `client` to 127.0.0.1:`port`; the upstream socket is returned for the proxy to pipe. */
    pair(client: Socket, port: number): Socket {
      track(client);
      const upstream = connect(port, '127.0.0.1');
      track(upstream);
      upstream.once('close', () => client.destroy());
      client.once('close', () => upstream.destroy());
      return upstream;
    },
    destroyAll(): void {
      for (const socket of sockets) socket.destroy();
    },
  };
}
