#!/usr/bin/env node
// Does a slow or failing webhook receiver change publish→deliver latency? (issue 17: "a slow
// receiver does not change publish→deliver latency (measured in a bench, not asserted in a timed
// test)"). One Herald (bench/servers/herald.mjs: `herald serve`'s option parser) per run, S SSE
// subscribers on /sub/bench/room — a channel whose rule says "presence": "events" — and a
// publisher POSTing /pub/bench/room at R messages a second; webhooks on for every event type,
// `publish` included, so every publish is an event stored in the outbox and sent. Four cases:
//
//   none      no --webhook-url (the floor)
//   fast      the receiver answers 200 at once
//   slow      the receiver never answers: each request hangs until Herald gives up on it (10 s)
//   failing   the receiver answers 500 at once: retries with back-off, then the batch is dropped
//
// Retries are made harsh (--webhook-retry 100ms, --webhook-attempts 3) so that the failing
// receiver is hit many times within a run. Per run: latency from the publisher's send to the
// subscriber's receipt (p50, p99, max over every delivery), server CPU (all threads, schedstat)
// per 1,000 deliveries, redis-server's too on Redis, and from /metrics the webhook requests by
// outcome and events dropped by reason. Runs are interleaved (none, fast, slow, failing, none, …)
// so that a noisy neighbour spreads over the cases; the table gives medians over the runs.
//
//   node bench/webhook-latency.mjs [--subscribers 200] [--rate 100] [--seconds 10] [--runs 3]
//                                  [--engines memory,redis] [--cases none,fast,slow,failing]
//                                  [--batch-wait 50ms] [-- node args…]
//
// Arguments after `--` go to Herald's node (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof, then
// bench/profile-summary.mjs). The receiver is a process of its own, as a backend is.
//
// Run from the repository root after `npm run build`. Redis needs redis-server on the PATH (or
// REDIS_SERVER=…): the bench starts its own on a free loopback port, flushed between runs; without
// one the Redis rows are skipped. Every process it starts is killed by PID when it ends, also on
// an abort or its own deadline.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from './lib/servers.mjs';

const { values, positionals: NODE_ARGS } = parseArgs({
  allowPositionals: true,
  options: {
    subscribers: { type: 'string', default: '200' },
    rate: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '10' },
    runs: { type: 'string', default: '3' },
    engines: { type: 'string', default: 'memory,redis' },
    cases: { type: 'string', default: 'none,fast,slow,failing' },
    // Herald's --webhook-batch-wait (left to Herald's default when not given: older builds lack it).
    'batch-wait': { type: 'string' },
  },
});
const SUBSCRIBERS = Number(values.subscribers);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const RUNS = Number(values.runs);
const ENGINES = values.engines.split(',');
const CASES = values.cases.split(',');
const WARMUP_SECONDS = 1;
const DRAIN_MS = 3000;
const CHANNEL = '/bench/room';
const HERALD = new URL('servers/herald.mjs', import.meta.url).pathname;
const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';
const EVENT_TYPES = 'channel.occupied,channel.vacated,user.online,user.offline,subscribe,unsubscribe,publish';
// The whole bench stops itself past this, killing what it started.
const DEADLINE_MS = (RUNS * ENGINES.length * CASES.length * (SECONDS + WARMUP_SECONDS + 10) + 60) * 1000;

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- processes: every one started here, killed by PID however the bench ends ----

const children = new Set();
const dir = mkdtempSync(join(tmpdir(), 'herald-whbench-'));
function killAll() {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {}
  }
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));
setTimeout(() => {
  console.error(`webhook-latency: past its deadline (${DEADLINE_MS / 1000} s), stopping`);
  process.exit(2);
}, DEADLINE_MS).unref();

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** CPU time of all a process's threads so far, ms at ns resolution (schedstat). */
function cpuMs(pid) {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {} // a thread that just ended
  }
  return ns / 1e6;
}

function waitForLine(child, pattern, what) {
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`${what} not ready within 20 s:\n${log}`)), 20_000);
    child.once('error', (error) => (clearTimeout(timer), reject(error)));
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`${what} exited (${code}):\n${log}`))));
    child.stdout.setEncoding('utf8').on('data', (text) => {
      log += text;
      const match = pattern.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
  });
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

// ---- Redis ----

async function startRedis() {
  const port = await freePort();
  const child = track(spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'notice'], { stdio: ['ignore', 'pipe', 'ignore'] }));
  await waitForLine(child, /Ready to accept connections/, 'redis-server');
  child.stdout.resume();
  return { child, port };
}

/** One command over a fresh connection; resolves on the first reply line. */
function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(5000, () => socket.destroy(new Error(`redis ${args[0]}: timeout`)));
    socket.on('error', reject);
    socket.once('data', (chunk) => {
      socket.end();
      const line = chunk.toString('utf8').split('\r\n')[0];
      if (line.startsWith('-')) reject(new Error(`redis ${args[0]}: ${line}`));
      else resolve(line);
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`);
  });
}

// ---- the webhook receiver: a process of its own, as the backend is (its work must not delay this one's timestamps) ----

const RECEIVER = `import { createServer } from 'node:http';
const kind = process.argv[1];
let events = 0;
const server = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    try { events += JSON.parse(body).events.length; } catch {}
    if (kind === 'fast') res.writeHead(200).end();
    else if (kind === 'failing') res.writeHead(500).end();
    // slow: never answered; Herald gives the request up after 10 s
  });
});
server.listen(0, '127.0.0.1', () => console.log('ready ' + server.address().port));
process.on('message', () => process.send({ events }));
process.on('disconnect', () => process.exit(0));`;

async function startReceiver(kind) {
  const child = track(spawn(process.execPath, ['--input-type=module', '-e', RECEIVER, kind], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] }));
  const port = Number((await waitForLine(child, /ready (\d+)/, 'the receiver'))[1]);
  return {
    url: `http://127.0.0.1:${port}/hook`,
    /** Events it was sent, retries included. */
    events() {
      return new Promise((resolve) => {
        child.once('message', (message) => resolve(message.events));
        child.send('count');
      });
    },
    close: () => stop(child),
  };
}

// ---- subscribers: /sub over SSE, one socket each ----

function subscribe(port, onData) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `/sub${CHANNEL}`, agent: false, headers: { Accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE ${res.statusCode}`));
      resolve(req);
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buffered += chunk;
        let end;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const event = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          if (/^event: /m.test(event)) continue; // join / leave / count / gap: not messages
          const line = event.split('\n').find((l) => l.startsWith('data: '));
          if (line !== undefined) onData(JSON.parse(line.slice(6)).data);
        }
      });
      res.on('error', () => {});
    });
    req.once('error', reject);
    req.end();
  });
}

// ---- one run ----

function get(port, path) {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    })
      .on('error', reject)
      .end();
  });
}

const status = async (port, path) => (await get(port, path)).status;

async function metrics(port) {
  const text = (await get(port, '/metrics')).body;
  const value = (name, label) => Number(new RegExp(`^${name}\\{${label}\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    ok: value('herald_webhook_requests_total', 'outcome="ok"'),
    failed: value('herald_webhook_requests_total', 'outcome="failed"'),
    droppedPending: value('herald_webhook_events_dropped_total', 'reason="pending"'),
    droppedAttempts: value('herald_webhook_events_dropped_total', 'reason="attempts"'),
    droppedEngine: value('herald_webhook_events_dropped_total', 'reason="engine"'),
  };
}

async function runOnce(engine, kind, redis) {
  if (redis !== undefined) await redisCommand(redis.port, 'FLUSHALL');
  const receiver = kind === 'none' ? undefined : await startReceiver(kind);
  const permissions = join(dir, 'permissions.json');
  writeFileSync(permissions, JSON.stringify({ channels: [{ pattern: '/bench/**', presence: 'events' }] }));
  const args = [...NODE_ARGS, HERALD, '0', '--permissions', permissions, '--drain-window', '0s'];
  if (redis !== undefined) args.push('--engine', `redis://127.0.0.1:${redis.port}`);
  if (receiver !== undefined) args.push('--webhook-url', receiver.url, '--webhook-secret', 'bench-webhook-secret-0123456789', '--webhook-events', EVENT_TYPES, '--webhook-retry', '100ms', '--webhook-attempts', '3');
  if (receiver !== undefined && values['batch-wait'] !== undefined) args.push('--webhook-batch-wait', values['batch-wait']);
  const herald = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let warnings = 0;
  herald.stderr.setEncoding('utf8').on('data', (text) => { if (process.env.WHB_LOG) process.stderr.write(text); warnings += text.split('\n').filter((line) => line.includes('webhook')).length; });
  const port = Number((await waitForLine(herald, /ready (\d+)/, 'Herald'))[1]);
  // Subscribing before the engine is ready would have those subscribe events dropped (reason engine).
  for (const deadline = now() + 20_000; (await status(port, '/ready')) !== 200; await sleep(20)) if (now() > deadline) throw new Error('Herald not ready within 20 s');

  const warmup = RATE * WARMUP_SECONDS;
  const total = warmup + RATE * SECONDS;
  const latencies = [];
  let delivered = 0;
  const onData = (data) => {
    if (data?.seq === undefined || data.seq < warmup) return;
    latencies.push(now() - data.sentAt);
    delivered++;
  };
  const subscriptions = [];
  for (let i = 0; i < SUBSCRIBERS; i += 50) subscriptions.push(...(await Promise.all(Array.from({ length: Math.min(50, SUBSCRIBERS - i) }, () => subscribe(port, onData)))));
  await sleep(500); // the subscribe events stored, the first webhook request sent

  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  let publishErrors = 0;
  const publish = (seq) => {
    const body = JSON.stringify({ seq, sentAt: now() });
    const req = request({ host: '127.0.0.1', port, path: `/pub${CHANNEL}`, method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      if (res.statusCode !== 200) publishErrors++;
      res.resume();
    });
    req.on('error', () => publishErrors++);
    req.end(body);
  };
  const cpu = { herald: 0, redis: 0 };
  const started = now();
  const period = 1000 / RATE;
  await new Promise((resolve) => {
    let seq = 0;
    const tick = () => {
      while (seq < total && now() >= started + seq * period) {
        if (seq === warmup) {
          cpu.herald = cpuMs(herald.pid);
          if (redis !== undefined) cpu.redis = cpuMs(redis.child.pid);
        }
        publish(seq++);
      }
      if (seq < total) setTimeout(tick, Math.max(0, started + seq * period - now()));
      else resolve();
    };
    tick();
  });
  const expected = SUBSCRIBERS * (total - warmup);
  const drainUntil = now() + DRAIN_MS;
  while (delivered < expected && now() < drainUntil) await sleep(10);
  cpu.herald = cpuMs(herald.pid) - cpu.herald;
  if (redis !== undefined) cpu.redis = cpuMs(redis.child.pid) - cpu.redis;
  const counted = await metrics(port);
  const received = (await receiver?.events()) ?? 0;

  for (const req of subscriptions) req.destroy();
  agent.destroy();
  await stop(herald);
  await receiver?.close();

  latencies.sort((a, b) => a - b);
  const at = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return {
    p50: at(0.5),
    p99: at(0.99),
    max: latencies.at(-1) ?? NaN,
    delivered,
    lost: expected - delivered,
    publishErrors,
    heraldCpuPer1k: (cpu.herald * 1000) / delivered,
    redisCpuPer1k: redis === undefined ? NaN : (cpu.redis * 1000) / delivered,
    ...counted,
    received,
    warnings,
  };
}

// ---- the whole bench ----

const median = (xs) => {
  const sorted = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.floor((sorted.length - 1) / 2)];
};
const benchStarted = Date.now();
console.log(`S = ${SUBSCRIBERS} SSE subscribers, R = ${RATE} publishes/s, ${SECONDS} s measured after ${WARMUP_SECONDS} s warm-up, ${RUNS} run(s) per case, Node ${process.version}`);
const rows = [];
for (const engine of ENGINES) {
  let redis;
  if (engine === 'redis') {
    try {
      redis = await startRedis();
    } catch (error) {
      console.log(`Redis skipped: ${error.message.split('\n')[0]} (set REDIS_SERVER or put redis-server on the PATH)`);
      continue;
    }
  }
  const results = Object.fromEntries(CASES.map((kind) => [kind, []]));
  for (let run = 1; run <= RUNS; run++) {
    for (const kind of CASES) {
      const result = await runOnce(engine, kind, redis);
      results[kind].push(result);
      console.log(`${engine} ${kind} run ${run}: p50 ${result.p50.toFixed(1)} p99 ${result.p99.toFixed(1)} max ${result.max.toFixed(1)} ms, lost ${result.lost}, Herald ${result.heraldCpuPer1k.toFixed(1)} ms CPU / 1k, webhook requests ok ${result.ok} failed ${result.failed}, events received ${result.received}, dropped ${result.droppedAttempts} (attempts) ${result.droppedPending} (pending) ${result.droppedEngine} (engine), ${result.warnings} webhook log lines`);
    }
  }
  if (redis !== undefined) await stop(redis.child);
  for (const kind of CASES) {
    const runs = results[kind];
    const m = (key) => median(runs.map((r) => r[key]));
    rows.push({ engine, receiver: kind, p50: m('p50'), p99: m('p99'), max: m('max'), lost: runs.reduce((s, r) => s + r.lost + r.publishErrors, 0), herald: m('heraldCpuPer1k'), redis: m('redisCpuPer1k'), ok: m('ok'), failed: m('failed'), received: m('received'), dropped: m('droppedAttempts') + m('droppedPending') + m('droppedEngine') });
  }
}
const f = (x, digits = 1) => (Number.isNaN(x) ? '—' : x.toFixed(digits));
console.log(`\nMedians of ${RUNS} run(s); ${((Date.now() - benchStarted) / 1000).toFixed(0)} s in all.`);
console.log('| engine | receiver | latency p50, ms | p99, ms | max, ms | lost | Herald CPU ms / 1k deliveries | redis-server CPU ms / 1k | webhook requests ok / failed | events received | events dropped |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.engine} | ${r.receiver} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} | ${r.lost} | ${f(r.herald)} | ${f(r.redis)} | ${r.receiver === 'none' ? '—' : `${r.ok} / ${r.failed}`} | ${r.receiver === 'none' ? '—' : r.received} | ${r.receiver === 'none' ? '—' : r.dropped} |`);
process.exit(0);
