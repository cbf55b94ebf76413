/**
 * A TCP proxy on loopback between one node and its Redis, to cut that node off alone (as a
 * network partition would): `cut()` drops every connection through it and refuses new ones until
 * `heal()`. Other nodes, connected to Redis directly, go on undisturbed.
 */
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { onCleanup } from './cleanup.js';

export interface CutProxy {
  /** The Redis URL to give the node. */
  readonly url: string;
  cut(): void;
  heal(): void;
}

export async function startCutProxy(t: { after(fn: () => unknown): void }, redisPort: number): Promise<CutProxy> {
  const sockets = new Set<Socket>();
  let open = true;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server = createServer((client) => {
    track(client);
    if (!open) return void client.destroy();
    const upstream = connect(redisPort, '127.0.0.1');
    track(upstream);
    upstream.once('close', () => client.destroy());
    client.once('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(t, () => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut() {
      open = false;
      for (const socket of sockets) socket.destroy();
    },
    heal() {
      open = true;
    },
  };
}
