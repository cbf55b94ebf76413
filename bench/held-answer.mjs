#!/usr/bin/env node
// Server CPU per answered held long-poll (issue 16): N Bayeux long-polling clients (raw HTTP over
// net sockets, one process, cheap enough not to be the bottleneck) hold their connects on a fresh
// Herald; then K publishes to their channel, one after another. For each publish the server's
// utime + stime (/proc) from the publish until every client had it:
//
//   answer   the clients hold their next connect back until all have the publish: the answers alone,
//            then the next connects (read, handled, held again) apart
//   cycle    the clients re-poll at once, as real ones do: answers and next connects together, until settled
//
// --profile <file> writes a CPU profile of the publishes alone (not the set-up): bench/profile-summary.mjs;
// with --mode answer, --phase answers|next profiles only that phase of each publish (<file>.<k>).
//
//   node bench/held-answer.mjs [--n 3000] [--publishes 10] [--mode cycle|answer] [--profile /tmp/held.cpuprofile]
import { request } from 'node:http';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { startNodeServer } from './lib/servers.mjs';

const { values } = parseArgs({ options: { n: { type: 'string', default: '3000' }, publishes: { type: 'string', default: '10' }, mode: { type: 'string', default: 'cycle' }, profile: { type: 'string' }, phase: { type: 'string' } } });
const N = Number(values.n);
const K = Number(values.publishes);
const DEFER = values.mode === 'answer';
const CHANNEL = '/bench/held';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One Bayeux client on one kept-alive connection: a request at a time, replies read by Content-Length. */
class RawClient {
  #buffer = '';
  #waiting;
  #n = 0;
  received = 0;

  constructor(port) {
    this.socket = connect({ host: '127.0.0.1', port });
    this.socket.setEncoding('latin1');
    this.socket.on('data', (text) => this.#read(text));
    this.socket.on('error', (error) => this.#waiting?.reject(error));
  }

  post(message) {
    const body = JSON.stringify([{ ...message, id: String(++this.#n) }]);
    const cookie = this.cookie ? `Cookie: ${this.cookie}\r\n` : '';
    this.socket.write(`POST /bayeux HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${cookie}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    return new Promise((resolve, reject) => (this.#waiting = { resolve, reject }));
  }

  #read(text) {
    this.#buffer += text;
    const end = this.#buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.#buffer.slice(0, end);
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
    if (this.#buffer.length < end + 4 + length) return;
    const body = Buffer.from(this.#buffer.slice(end + 4, end + 4 + length), 'latin1').toString('utf8');
    this.#buffer = this.#buffer.slice(end + 4 + length);
    this.cookie ??= /set-cookie: ([^;\r]+)/i.exec(head)?.[1];
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve(JSON.parse(body));
  }

  async start() {
    const [hs] = await this.post({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] });
    this.clientId = hs.clientId;
    await this.post({ channel: '/meta/subscribe', clientId: this.clientId, subscription: CHANNEL });
    await this.connect({ timeout: 0 });
  }

  connect(advice) {
    return this.post({ channel: '/meta/connect', clientId: this.clientId, connectionType: 'long-polling', ...(advice && { advice }) });
  }

  /** Holds connects; each reply counted, then the next connect sent (now, or when `gate` opens). */
  async loop(gate, onData) {
    for (;;) {
      const replies = await this.connect();
      for (const message of replies) if (message.channel === CHANNEL) onData();
      await gate();
    }
  }
}

function publish(port, seq) {
  const body = JSON.stringify({ seq });
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `/pub${CHANNEL}`, method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const server = await startNodeServer('herald');
const clients = [];
try {
  for (let i = 0; i < N; i += 250) {
    const batch = Array.from({ length: Math.min(250, N - i) }, () => new RawClient(server.port));
    await Promise.all(batch.map((client) => client.start()));
    clients.push(...batch);
  }
  let gateOpen = Promise.resolve();
  let openGate = () => {};
  let got = 0;
  let allGot = () => {};
  const onData = () => {
    if (++got === N) allGot();
  };
  for (const client of clients) void client.loop(() => (DEFER ? gateOpen : undefined), onData);
  await sleep(1000);
  const ask = (message) => new Promise((resolve) => (server.child.once('message', resolve), server.child.send(message)));
  const PHASE = DEFER ? values.phase : undefined;
  if (values.profile && !PHASE) await ask('profile-start');
  const phase = async (name, k, run) => {
    if (values.profile && PHASE === name) await ask('profile-start');
    await run();
    if (values.profile && PHASE === name) await ask({ profile: `${values.profile}.${k}` });
  };
  const cpu = [];
  const system = [];
  const repoll = [];
  const wall = [];
  for (let k = 0; k < K; k++) {
    got = 0;
    if (DEFER) gateOpen = new Promise((resolve) => (openGate = resolve));
    const everyone = new Promise((resolve) => (allGot = resolve));
    let before;
    await phase('answers', k, async () => {
      before = server.cpu();
      const t0 = performance.now();
      await publish(server.port, k);
      await everyone;
      wall.push(performance.now() - t0);
    });
    // Deferred: the answers alone, then the next connects; otherwise the whole cycle, settled.
    if (DEFER) {
      const answeredAt = server.cpu();
      const answered = answeredAt.total;
      cpu.push(answered - before.total);
      system.push(answeredAt.system - before.system);
      await phase('next', k, async () => {
        openGate();
        await sleep(1500);
      });
      repoll.push(server.cpu().total - answered);
    } else {
      await sleep(1000);
      const after = server.cpu();
      cpu.push(after.total - before.total);
      system.push(after.system - before.system);
    }
  }
  if (values.profile && !PHASE) await ask({ profile: values.profile });
  const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
  console.log(`held-answer: N = ${N}, ${K} publishes, mode ${values.mode}`);
  const perPoll = (list) => `${list.map((v) => v.toFixed(0)).join(' ')} (median ${median(list).toFixed(0)}: ${((median(list) / N) * 1000).toFixed(1)} µs per poll)`;
  console.log(`  server CPU per publish, ms (${DEFER ? 'the answers alone' : 'answers and the next connects'}): ${perPoll(cpu)}`);
  console.log(`    of which system (kernel) time, ms: ${perPoll(system)}`);
  if (DEFER) console.log(`  server CPU for the next connects, ms: ${perPoll(repoll)}`);
  console.log(`  until all had it, ms: ${wall.map((v) => v.toFixed(0)).join(' ')} (median ${median(wall).toFixed(0)})`);
} finally {
  for (const client of clients) client.socket.destroy();
  await server.stop();
}
