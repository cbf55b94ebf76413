#!/usr/bin/env node
// Cluster benchmark for the Redis engine: S WebSocket subscribers on one channel, M messages published
// at R per second over REST (`POST /pub/bench/room`), each stamped with its send time. In one run:
//   memory   one Herald node, memory engine
//   redis-1  one Herald node, Redis engine
//   redis-3  three Herald nodes on the same Redis: subscribers spread evenly over the nodes,
//            publishes made round-robin on the nodes
// Prints deliveries/s, losses, duplicates, publish→deliver p50/p99, server CPU (utime+stime from /proc,
// summed over every Herald process) and redis-server's own CPU per 1,000 deliveries, and each Redis
// scenario as a ratio against the memory scenario of the same run, as a markdown table.
//
//   node bench/cluster.mjs [--subscribers 1000] [--messages 200] [--rate 50] [--only memory,redis-1,redis-3]
//
// Run from the repository root after `npm run build` and `npm install --prefix bench`. Needs
// redis-server on the PATH (or REDIS_SERVER=/path/to/redis-server): the benchmark starts its own on a
// free loopback port without persistence, FLUSHALLs it before each scenario and stops it at the end.
// Every process it starts is killed by PID when it ends, also on errors, Ctrl-C or its own time limit.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createConnection, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { closeAgent, Subscriber } from './lib/bayeux-client.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const MAIN = join(HERE, '..', 'dist', 'cli', 'main.js');
const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';
const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '1000' },
    messages: { type: 'string', default: '200' },
    rate: { type: 'string', default: '50' },
    only: { type: 'string' },
  },
});
const S = Number(values.subscribers);
const M = Number(values.messages);
const R = Number(values.rate);
const CHANNEL = '/bench/room';

const SCENARIOS = [
  { name: 'memory', label: 'memory, 1 node', nodes: 1, redis: false },
  { name: 'redis-1', label: 'Redis, 1 node', nodes: 1, redis: true },
  { name: 'redis-3', label: 'Redis, 3 nodes', nodes: 3, redis: true },
].filter((s) => !values.only || values.only.split(',').includes(s.name));

const TICKS_PER_SECOND = 100; // USER_HZ on Linux
const READY_TIMEOUT_MS = 20_000;
const DRAIN_TIMEOUT_MS = 10_000; // after the last publish, for the deliveries still on their way
const WATCHDOG_MS = 15 * 60_000; // the whole run, whatever happens

// ---- processes: every child is tracked and killed by its PID, whatever way the benchmark ends ----

const children = new Set();

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killAll(signal = 'SIGKILL') {
  for (const child of children) {
    try {
      process.kill(child.pid, signal);
    } catch {}
  }
}

/** Kills every child, waits (briefly) until they are reaped, then exits. */
async function abort(reason, code) {
  console.error(`${reason}: stopping`);
  const exits = [...children].map((child) => new Promise((resolve) => child.once('exit', resolve)));
  killAll();
  await Promise.race([Promise.all(exits), sleep(2_000)]);
  process.exit(code);
}

process.on('exit', () => killAll());
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => abort(signal, 130));
setTimeout(() => abort(`watchdog: the benchmark ran for ${WATCHDOG_MS / 60_000} min`, 2), WATCHDOG_MS).unref();

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
async function stop(child, graceMs = 5_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    console.error(`  process ${child.pid} still running ${graceMs} ms after SIGTERM: SIGKILL`);
    child.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

/** Free loopback ports, all held open at once so that they differ, then released. */
async function freePorts(n) {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

// ---- CPU from /proc ----

/** User and system CPU of a process so far, in ms (fields 14 and 15 of /proc/<pid>/stat). */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const user = (Number(fields[11]) * 1000) / TICKS_PER_SECOND;
  const system = (Number(fields[12]) * 1000) / TICKS_PER_SECOND;
  return { user, system, total: user + system };
}

/** CPU time of all a process's threads in ms at ns resolution (schedstat), for small amounts such as Redis's. */
function runTimeMs(pid) {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {} // a thread that just ended
  }
  return ns / 1e6;
}

function sumCpu(pids) {
  return pids.map(cpuMs).reduce((a, b) => ({ user: a.user + b.user, system: a.system + b.system, total: a.total + b.total }));
}

// ---- Redis ----

async function startRedis() {
  const [port] = await freePorts(1);
  const child = track(
    spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', '--loglevel', 'notice'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  await new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`redis-server not ready within ${READY_TIMEOUT_MS} ms:\n${log}`)), READY_TIMEOUT_MS);
    child.once('error', (error) => (clearTimeout(timer), reject(error)));
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`redis-server exited (${code}):\n${log}`))));
    child.stdout.setEncoding('utf8').on('data', (text) => {
      log += text;
      if (log.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  child.stdout.resume(); // keep draining its log
  return { child, port };
}

/** One command over a fresh connection (RESP): the reply's first line, or a bulk string's contents. */
function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(5_000, () => socket.destroy(new Error(`redis ${args[0]}: timeout`)));
    let reply = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      reply = Buffer.concat([reply, chunk]);
      const eol = reply.indexOf('\r\n');
      if (eol < 0) return;
      const line = reply.subarray(0, eol).toString('utf8');
      if (line.startsWith('$') && Number(line.slice(1)) >= 0) {
        const length = Number(line.slice(1));
        if (reply.length < eol + 2 + length + 2) return;
        socket.end();
        resolve(reply.subarray(eol + 2, eol + 2 + length).toString('utf8'));
        return;
      }
      socket.end();
      if (line.startsWith('-')) reject(new Error(`redis ${args[0]}: ${line}`));
      else resolve(line);
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`);
  });
}

// ---- Herald nodes ----

const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

function httpRequest(port, method, path, body) {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
    const req = request({ host: '127.0.0.1', port, path, method, agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function startHerald(index, port, redisPort) {
  // BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the servers.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const args = [...nodeArgs, MAIN, 'serve', '--port', String(port), '--host', '127.0.0.1', '--demo', 'off', '--log-level', 'warn', '--max-sessions-per-ip', '0', '--max-connections', '0'];
  if (redisPort !== undefined) args.push('--engine', `redis://127.0.0.1:${redisPort}`);
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'pipe'] }));
  const node = { index, port, child, warnings: [] };
  child.stderr.setEncoding('utf8').on('data', (text) => {
    for (const line of text.split('\n').filter(Boolean)) {
      node.warnings.push(line);
      if (node.warnings.length <= 5) console.error(`  [node ${index}] ${line}`);
    }
  });
  const exited = new Promise((_, reject) => child.once('exit', (code, signal) => reject(new Error(`Herald node ${index} exited (${code ?? signal}) before it was ready`))));
  exited.catch(() => {});
  const deadline = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    const status = await Promise.race([httpRequest(port, 'GET', '/health').then((r) => r.status, () => 0), exited]);
    if (status === 200) return node;
    if (performance.now() > deadline) throw new Error(`Herald node ${index} not healthy within ${READY_TIMEOUT_MS} ms`);
    await sleep(100);
  }
}

// ---- measurement ----

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function inBatches(items, size, fn) {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

function percentile(sorted, p) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run(scenario, redis) {
  if (scenario.redis) await redisCommand(redis.port, 'FLUSHALL');
  const ports = await freePorts(scenario.nodes);
  const nodes = [];
  let subscribers = [];
  try {
    for (let i = 0; i < scenario.nodes; i++) nodes.push(await startHerald(i, ports[i], scenario.redis ? redis.port : undefined));
    const latencies = [];
    // Each message's earliest delivery, the server path alone (REST → engine → Redis → node → socket) without
    // the time the one load process then takes to read the other S - 1 copies. The message is found from its
    // send time (arrival − latency), the nearest of the send times recorded, which are ≥ 1000/R ms apart.
    const sentAts = [];
    const firstLatency = [];
    const onLatency = (ms) => {
      latencies.push(ms);
      const sent = performance.timeOrigin + performance.now() - ms;
      let lo = 0;
      let hi = sentAts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (sentAts[mid] < sent) lo = mid + 1;
        else hi = mid;
      }
      if (lo > 0 && sent - sentAts[lo - 1] < sentAts[lo] - sent) lo--;
      if (!(firstLatency[lo] <= ms)) firstLatency[lo] = ms;
    };
    // Subscriber i lives on node i mod N.
    subscribers = Array.from({ length: S }, (_, i) => new Subscriber(ports[i % ports.length], '/bayeux', 'websocket', onLatency));
    await inBatches(subscribers, 50, (s) => s.start(CHANNEL));
    // Let every subscriber's connect settle into its held state (and each node's Redis SUBSCRIBE complete).
    await sleep(1000);

    const expected = S * M;
    const pids = nodes.map((n) => n.child.pid);
    const cpuBefore = sumCpu(pids);
    // Redis's own account of the publish script's run time over the window (INFO commandstats).
    if (scenario.redis) await redisCommand(redis.port, 'CONFIG', 'RESETSTAT');
    const redisBefore = scenario.redis ? { stat: cpuMs(redis.child.pid), run: runTimeMs(redis.child.pid) } : undefined;
    const clientCpuBefore = process.cpuUsage();
    const publishMs = [];
    let publishFailures = 0;
    const started = performance.now();
    for (let seq = 0; seq < M; seq++) {
      const due = started + (seq * 1000) / R;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      // Round-robin over the nodes.
      const port = ports[seq % ports.length];
      const sentAt = performance.timeOrigin + performance.now();
      sentAts.push(sentAt);
      try {
        const reply = await httpRequest(port, 'POST', `/pub${CHANNEL}`, JSON.stringify({ seq, sentAt }));
        if (reply.status !== 200) throw new Error(`HTTP ${reply.status}: ${reply.text.slice(0, 200)}`);
      } catch (error) {
        if (publishFailures++ < 5) console.error(`  publish ${seq} on node ${seq % ports.length} failed: ${error.message}`);
      }
      publishMs.push(performance.timeOrigin + performance.now() - sentAt);
    }
    const publishedAt = performance.now();
    const total = () => subscribers.reduce((n, s) => n + s.received, 0);
    const deadline = publishedAt + DRAIN_TIMEOUT_MS;
    while (total() < expected && performance.now() < deadline) await sleep(20);
    const elapsedS = (performance.now() - started) / 1000;
    const cpuAfter = sumCpu(pids);
    const redisCpu = scenario.redis
      ? { stat: cpuMs(redis.child.pid).total - redisBefore.stat.total, run: runTimeMs(redis.child.pid) - redisBefore.run }
      : undefined;
    const clientCpu = process.cpuUsage(clientCpuBefore);
    // ioredis loads a script with EVAL on a connection's first call, then runs it with EVALSHA.
    const scriptStats = scenario.redis
      ? [...(await redisCommand(redis.port, 'INFO', 'commandstats')).matchAll(/cmdstat_eval(?:sha)?:calls=(\d+),usec=(\d+)/g)].reduce(
          (sum, m) => ({ calls: sum.calls + Number(m[1]), usec: sum.usec + Number(m[2]) }),
          { calls: 0, usec: 0 },
        )
      : undefined;
    // A node that died during the run shows here rather than as mere losses.
    for (const node of nodes) if (node.child.exitCode !== null) throw new Error(`Herald node ${node.index} exited during the run`);

    const delivered = total();
    const unique = subscribers.reduce((n, s) => n + s.seen.size, 0);
    latencies.sort((a, b) => a - b);
    const firsts = firstLatency.filter((ms) => ms !== undefined).sort((a, b) => a - b);
    publishMs.sort((a, b) => a - b);
    return {
      scenario: scenario.name,
      label: scenario.label,
      nodes: scenario.nodes,
      deliveriesPerS: Math.round(delivered / elapsedS),
      delivered,
      lost: expected - unique,
      duplicates: subscribers.reduce((n, s) => n + s.duplicates, 0),
      outOfOrder: subscribers.reduce((n, s) => n + s.outOfOrder, 0),
      publishFailures,
      publishP50: percentile(publishMs, 50),
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies.at(-1) ?? NaN,
      firstP50: percentile(firsts, 50),
      firstP99: percentile(firsts, 99),
      heraldCpuPer1k: ((cpuAfter.total - cpuBefore.total) / delivered) * 1000,
      heraldUserCpuPer1k: ((cpuAfter.user - cpuBefore.user) / delivered) * 1000,
      redisCpuPer1k: redisCpu ? (redisCpu.stat / delivered) * 1000 : undefined,
      redisRunPer1k: redisCpu ? (redisCpu.run / delivered) * 1000 : undefined,
      redisRunPerPublish: redisCpu ? redisCpu.run / M : undefined,
      scriptCalls: scriptStats?.calls,
      scriptUsPerCall: scriptStats ? scriptStats.usec / scriptStats.calls : undefined,
      clientCpuPer1k: ((clientCpu.user + clientCpu.system) / 1000 / delivered) * 1000,
      warnings: nodes.reduce((n, node) => n + node.warnings.length, 0),
    };
  } finally {
    for (const s of subscribers) s.stop();
    // SIGTERM lets a profiled server write its profile.
    await Promise.all(nodes.map((n) => stop(n.child)));
  }
}

// ---- main ----

if (!existsSync(MAIN)) {
  console.error(`${MAIN} is missing: run \`npm run build\` first`);
  process.exit(1);
}
console.log(`cluster: S=${S} WebSocket subscribers, M=${M} messages at R=${R}/s over REST, one channel; ${new Date().toISOString()}`);
const fmt = (n, digits = 2) => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits));
const results = [];
let redis;
let failed = false;
try {
  if (SCENARIOS.some((s) => s.redis)) {
    redis = await startRedis();
    console.log(`redis-server ${redis.child.pid} on 127.0.0.1:${redis.port}`);
  }
  for (const scenario of SCENARIOS) {
    const r = await run(scenario, redis);
    results.push(r);
    console.log(
      `${r.scenario.padEnd(8)} deliveries/s ${String(r.deliveriesPerS).padStart(7)}  lost ${r.lost}  dup ${r.duplicates}  reordered ${r.outOfOrder}  ` +
        `publish failures ${r.publishFailures}  p50 ${fmt(r.p50, 1)} ms  p99 ${fmt(r.p99, 1)} ms  max ${fmt(r.max, 1)} ms  first delivery p50 ${fmt(r.firstP50, 2)} p99 ${fmt(r.firstP99, 2)} ms  publish ack p50 ${fmt(r.publishP50, 2)} ms  ` +
        `Herald CPU ${fmt(r.heraldCpuPer1k)} ms/1k (user ${fmt(r.heraldUserCpuPer1k)})  redis CPU ${fmt(r.redisCpuPer1k)} ms/1k ` +
        `(schedstat ${fmt(r.redisRunPer1k, 3)} ms/1k, ${fmt(r.redisRunPerPublish, 3)} ms/publish; scripts ${r.scriptCalls ?? '—'} calls, ${fmt(r.scriptUsPerCall, 1)} µs each)  client ${fmt(r.clientCpuPer1k)} ms/1k  log lines ${r.warnings}`,
    );
  }
} catch (error) {
  failed = true;
  console.error(error);
} finally {
  if (redis) await stop(redis.child);
  agent.destroy();
  closeAgent();
}

if (results.length > 0) {
  const memory = results.find((r) => r.scenario === 'memory');
  const ratio = (a, b) => (memory && a !== undefined && b ? `${(a / b).toFixed(2)}×` : '—');
  console.log('');
  // Redis's CPU is small: besides /proc/<pid>/stat (10 ms ticks) it is given from schedstat (ns), which the sum uses.
  console.log('| scenario | deliveries/s | lost / dup / reordered | p50 / p99 ms | first delivery p50 / p99 ms | Herald CPU ms per 1k deliveries (user) | redis-server CPU ms per 1k, stat (schedstat) | Herald + Redis CPU ms per 1k |');
  console.log('|---|---:|---|---|---|---|---|---:|');
  for (const r of results) {
    console.log(
      `| ${r.label} | ${r.deliveriesPerS.toLocaleString('en')} | ${r.lost} / ${r.duplicates} / ${r.outOfOrder} | ${fmt(r.p50, 1)} / ${fmt(r.p99, 1)} | ${fmt(r.firstP50, 2)} / ${fmt(r.firstP99, 2)} | ` +
        `${fmt(r.heraldCpuPer1k)} (${fmt(r.heraldUserCpuPer1k)}) | ${r.redisCpuPer1k === undefined ? '—' : `${fmt(r.redisCpuPer1k)} (${fmt(r.redisRunPer1k)})`} | ${fmt(r.heraldCpuPer1k + (r.redisRunPer1k ?? 0))} |`,
    );
  }
  if (memory && results.length > 1) {
    console.log('');
    console.log('| ÷ memory, same run | deliveries/s | p50 | p99 | first delivery p50 | Herald CPU per delivery | Herald + Redis CPU per delivery |');
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    for (const r of results) {
      if (r === memory) continue;
      console.log(
        `| ${r.label} | ${ratio(r.deliveriesPerS, memory.deliveriesPerS)} | ${ratio(r.p50, memory.p50)} | ${ratio(r.p99, memory.p99)} | ${ratio(r.firstP50, memory.firstP50)} | ` +
          `${ratio(r.heraldCpuPer1k, memory.heraldCpuPer1k)} | ${ratio(r.heraldCpuPer1k + (r.redisRunPer1k ?? 0), memory.heraldCpuPer1k)} |`,
      );
    }
  }
}
process.exitCode = failed ? 1 : 0;
