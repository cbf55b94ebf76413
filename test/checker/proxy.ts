/**
 * @module
 * A TCP proxy the checker puts between clients and Herald, to do what networks do: cut
 * connections (all of them, or some), and stall a reader (stop reading what the server sends, so
 * its writes back up as a slow consumer's would). With several nodes it is a sticky balancer, as
 * the README's cluster section requires: the proxy's client side (one client address) is stuck to
 * one node — at first the preferred one — and every new connection goes there until that node
 * stops accepting; then the client is stuck to the next node that accepts, and stays there even
 * once the first comes back (an HAProxy stick table on the source address). A balancer that picks
 * a node per connection would split a client's kept-alive connections across nodes after a
 * failover: a handshake on one, its connect on another (402::session_unknown, every time).
 */
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

interface Pair {
  readonly client: Socket;
  upstream: Socket | undefined;
  stalledUntil: number;
}

export class FaultProxy {
  readonly #pairs = new Set<Pair>();
  readonly #server: Server;
  #port = 0;
  /** The node (an index into `ports()`) every new connection goes to while it accepts. */
  #stuck: number;

  /** `ports()`: the nodes' ports now (a restarted node may have a new one); `preferred`: which to try first. */
  constructor(
    private readonly ports: () => readonly number[],
    private readonly preferred = 0,
  ) {
    this.#server = createServer((client) => this.#accept(client));
    this.#stuck = preferred;
  }

  async listen(): Promise<number> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.#port = (this.#server.address() as AddressInfo).port;
    return this.#port;
  }

  get port(): number {
    return this.#port;
  }

  get connections(): number {
    return this.#pairs.size;
  }

  /** Cuts each open connection with probability `fraction` (1 = all); returns how many. */
  cut(fraction: number, random: () => number): number {
    let cut = 0;
    for (const pair of [...this.#pairs]) {
      if (fraction < 1 && random() >= fraction) continue;
      pair.client.destroy();
      pair.upstream?.destroy();
      cut++;
    }
    return cut;
  }

  /** Stops reading from the server on each connection with probability `fraction`, for `ms`. */
  stall(fraction: number, ms: number, random: () => number): number {
    let stalled = 0;
    const until = Date.now() + ms;
    for (const pair of this.#pairs) {
      if (pair.upstream === undefined || (fraction < 1 && random() >= fraction)) continue;
      pair.stalledUntil = until;
      pair.upstream.pause();
      stalled++;
      setTimeout(() => {
        // Not a comparison with Date.now(): a timer may fire a millisecond before it by that clock.
        if (pair.stalledUntil !== until) return; // a later stall of this pair resumes it
        pair.stalledUntil = 0;
        pair.upstream?.resume();
      }, ms).unref();
    }
    return stalled;
  }

  async close(): Promise<void> {
    for (const pair of this.#pairs) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    this.#server.close();
  }

  #accept(client: Socket): void {
    const pair: Pair = { client, upstream: undefined, stalledUntil: 0 };
    this.#pairs.add(pair);
    client.on('error', () => client.destroy());
    client.once('close', () => {
      this.#pairs.delete(pair);
      pair.upstream?.destroy();
    });
    client.pause();
    const ports = this.ports();
    // The stuck node first, then the others in the order of preference.
    const stuck = this.#stuck % ports.length;
    const order = [stuck, ...ports.map((_, i) => (this.preferred + i) % ports.length).filter((i) => i !== stuck)];
    const tryFrom = (attempt: number) => {
      if (client.destroyed) return;
      if (attempt >= order.length) return void client.destroy();
      const node = order[attempt]!;
      const upstream = connect(ports[node]!, '127.0.0.1');
      let connected = false;
      upstream.on('error', () => {
        if (connected) client.destroy();
        else tryFrom(attempt + 1);
      });
      upstream.once('connect', () => {
        connected = true;
        // A node that refused since this try began is not one to go back to: only the stuck
        // node failing moves the client (a connection begun before a failover follows it).
        if (attempt > 0 && this.#stuck % ports.length === stuck) this.#stuck = node;
        pair.upstream = upstream;
        upstream.once('close', () => client.destroy());
        client.pipe(upstream);
        // Not pipe(): a stalled reader must stop reading from the server, which pipe would resume.
        upstream.on('data', (chunk: Buffer) => {
          if (!client.write(chunk)) {
            upstream.pause();
            client.once('drain', () => {
              if (pair.stalledUntil === 0) upstream.resume();
            });
          }
        });
        client.resume();
      });
    };
    tryFrom(0);
  }
}
