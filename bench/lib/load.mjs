// The load side of bench/compare.mjs: several load processes (lib/load-worker.mjs), each on its own
// loopback source address (127.0.0.2, 127.0.0.3, …: ephemeral ports per address), sharing the clients,
// and the publisher, which runs in the coordinator: `POST /pub/<channel>` (Herald, Nchan, Socket.IO)
// or a Bayeux publish (Faye, cometd-nodejs-server), one at a time on one kept-alive connection so that
// the messages leave in order.
import { Agent, request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Publisher as BayeuxPublisher } from './bayeux-client.mjs';
import { spawnRaised } from './servers.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));

class Worker {
  #waiting = new Map(); // reply type → resolvers, in order
  progress = { ready: 0, failed: 0 };

  constructor(index) {
    this.index = index;
    this.localAddress = `127.0.0.${2 + index}`;
    this.child = spawnRaised([process.execPath, join(HERE, 'load-worker.mjs')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    this.child.on('message', (message) => {
      if (message.type === 'progress' || message.type === 'started') this.progress = message;
      if (message.type === 'error') console.error(`load process ${index}: ${message.message}`);
      const queue = this.#waiting.get(message.type);
      if (queue?.length) queue.shift().resolve(message);
    });
    this.child.once('exit', (code) => {
      for (const [type, queue] of this.#waiting) for (const { reject } of queue.splice(0)) reject(new Error(`load process ${index} exited (${code}) while waiting for ${type}`));
    });
    this.hello = this.#next('hello');
  }

  #next(type) {
    return new Promise((resolve, reject) => {
      if (!this.#waiting.has(type)) this.#waiting.set(type, []);
      this.#waiting.get(type).push({ resolve, reject });
    });
  }

  request(command, replyType) {
    const reply = this.#next(replyType);
    this.child.send(command);
    return reply;
  }
}

export class Load {
  /** @param processes how many load processes share the clients */
  constructor(processes) {
    this.workers = Array.from({ length: processes }, (_, i) => new Worker(i));
  }

  async ready() {
    await Promise.all(this.workers.map((w) => w.hello));
  }

  /** Opens `count` clients of `kind`, split over the load processes; resolves with what the starts gave. */
  async start(kind, target, count, inflight) {
    const shares = this.workers.map((_, i) => Math.floor(count / this.workers.length) + (i < count % this.workers.length ? 1 : 0));
    const started = await Promise.all(
      this.workers.map((w, i) => w.request({ cmd: 'start', kind, target: { ...target, localAddress: w.localAddress }, count: shares[i], inflight: Math.max(1, Math.ceil(inflight / this.workers.length)) }, 'started')),
    );
    return {
      ready: started.reduce((n, s) => n + s.ready, 0),
      failed: started.reduce((n, s) => n + s.failed, 0),
      retries: started.reduce((n, s) => n + s.retries, 0),
      errors: Object.assign({}, ...started.map((s) => s.errors)),
    };
  }

  /** Clients ready so far, from the processes' last progress reports. */
  get readySoFar() {
    return this.workers.reduce((n, w) => n + w.progress.ready, 0);
  }

  async mark() {
    await Promise.all(this.workers.map((w) => w.request({ cmd: 'mark' }, 'marked')));
  }

  async received() {
    const counts = await Promise.all(this.workers.map((w) => w.request({ cmd: 'count' }, 'count')));
    return counts.reduce((n, c) => n + c.received, 0);
  }

  /** Polls until `expected` deliveries arrived since the mark, or `timeoutMs` passed. */
  async waitForDeliveries(expected, timeoutMs) {
    const deadline = performance.now() + timeoutMs;
    let received = await this.received();
    while (received < expected && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      received = await this.received();
    }
    return received;
  }

  /** Each process's figures over the window since the mark; `seqs` messages were expected by every client. */
  async report(seqs, perClient = false) {
    return Promise.all(this.workers.map((w) => w.request({ cmd: 'report', seqs, perClient }, 'report')));
  }

  async stop() {
    await Promise.all(
      this.workers.map(async (w) => {
        if (w.child.exitCode !== null) return;
        const exited = new Promise((resolve) => w.child.once('exit', resolve));
        w.child.send({ cmd: 'stop' });
        const timer = setTimeout(() => w.child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

/** Publishes over plain HTTP: `POST /pub<channel>` with a JSON body, one request at a time. */
class RestPublisher {
  #agent = new Agent({ keepAlive: true, maxSockets: 1 });

  constructor(port) {
    this.port = port;
  }

  async start() {}

  publish(channel, data) {
    const body = JSON.stringify(data);
    return new Promise((resolve, reject) => {
      const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
      const req = request({ host: '127.0.0.1', port: this.port, path: `/pub${channel}`, method: 'POST', agent: this.#agent, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => (res.statusCode >= 200 && res.statusCode < 300 ? resolve() : reject(new Error(`publish: HTTP ${res.statusCode} ${text.slice(0, 200)}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  close() {
    this.#agent.destroy();
  }
}

export function publisherFor(peer, port) {
  return peer.publish === 'bayeux' ? new BayeuxPublisher(port, peer.path) : new RestPublisher(port);
}
