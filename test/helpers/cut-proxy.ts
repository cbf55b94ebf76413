/**
 * A TCP proxy on loopback between one node and its Redis, to cut that node off alone (as a
 * network partition would): `cut()` drops every connection through it and refuses new ones until
 * `heal()`. Other nodes, connected to Redis directly, go on undisturbed.
 */
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { onCleanup } from './cleanup.js';
import { proxySockets } from './proxy-sockets.js';

export interface CutProxy {
  /** The Redis URL to give the node. */
  readonly url: string;
  cut(): void;
  heal(): void;
}

export async function startCutProxy(t: { after(fn: () => unknown): void }, redisPort: number): Promise<CutProxy> {
  const sockets = proxySockets();
  let open = true;
  const server = createServer((client) => {
    if (!open) return void client.destroy();
    const upstream = sockets.pair(client, redisPort);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(t, () => {
    sockets.destroyAll();
    server.close();
  });
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut() {
      open = false;
      sockets.destroyAll();
    },
    heal() {
      open = true;
    },
  };
}
