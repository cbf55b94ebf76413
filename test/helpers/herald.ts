/** Starts a real Herald on a free loopback port and closes it after the test. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TestContext } from 'node:test';
import { createHerald } from '../../src/server/create-herald.js';
import type { Herald, HeraldOptions } from '../../src/server/create-herald.js';
import { onCleanup } from './cleanup.js';

export interface RunningHerald {
  herald: Herald;
  port: number;
  url: string;
}

export async function startHerald(t: TestContext | { after(fn: () => unknown): void }, options: HeraldOptions = {}): Promise<RunningHerald> {
  const herald = createHerald(options);
  const address = await herald.listen(0, '127.0.0.1');
  onCleanup(t, () => herald.close());
  return { herald, port: address.port, url: `http://127.0.0.1:${address.port}` };
}

export interface DroppableHerald extends RunningHerald {
  /** Cuts every WebSocket at the TCP level, as a crashing proxy or network would. */
  dropWebSockets(): number;
  /** WebSocket upgrades seen so far. */
  upgrades(): number;
}

/** Herald attached to a server of the test's own, so the test can cut upgraded sockets. */
export async function startDroppableHerald(t: { after(fn: () => unknown): void }, options: HeraldOptions = {}): Promise<DroppableHerald> {
  const server = createServer();
  const herald = createHerald(options);
  herald.attach(server);
  const sockets = new Set<Duplex>();
  let upgrades = 0;
  server.prependListener('upgrade', (_req, socket: Duplex) => {
    upgrades++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  onCleanup(t, async () => {
    await herald.close();
    server.close();
  });
  return {
    herald,
    port,
    url: `http://127.0.0.1:${port}`,
    upgrades: () => upgrades,
    dropWebSockets() {
      const count = sockets.size;
      for (const socket of sockets) socket.destroy();
      return count;
    },
  };
}
