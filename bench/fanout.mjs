#!/usr/bin/env node
// Fan-out benchmark: S subscribers on one channel, one publisher sending M messages at R per second,
// each stamped with its send time. For Herald and, in the same run, Faye and cometd-nodejs-server,
// over WebSocket and long-polling. Prints deliveries/s, losses, publish→deliver p50/p99 and the
// server process's CPU time (utime+stime from /proc) per 1,000 deliveries.
//
//   node bench/fanout.mjs [--subscribers 1000] [--messages 200] [--rate 20] [--only herald-ws,faye-ws]
//
// Run from the repository root after `npm run build` and `npm install --prefix bench`.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { closeAgent, Publisher, Subscriber } from './lib/bayeux-client.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '1000' },
    messages: { type: 'string', default: '200' },
    rate: { type: 'string', default: '20' },
    only: { type: 'string' },
  },
});
const S = Number(values.subscribers);
const M = Number(values.messages);
const R = Number(values.rate);

const SCENARIOS = [
  { name: 'herald-ws', server: 'herald', path: '/bayeux', transport: 'websocket' },
  { name: 'faye-ws', server: 'faye', path: '/bayeux', transport: 'websocket' },
  { name: 'herald-lp', server: 'herald', path: '/bayeux', transport: 'long-polling' },
  { name: 'faye-lp', server: 'faye', path: '/bayeux', transport: 'long-polling' },
  { name: 'cometd-lp', server: 'cometd', path: '/cometd', transport: 'long-polling' },
].filter((s) => !values.only || values.only.split(',').includes(s.name));

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** User and system CPU of a process so far, in ms (fields 14 and 15 of /proc/<pid>/stat). */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const user = (Number(fields[11]) * 1000) / TICKS_PER_SECOND;
  const system = (Number(fields[12]) * 1000) / TICKS_PER_SECOND;
  return { user, system, total: user + system };
}

function startServer(name) {
  // BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the servers.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, join(HERE, 'servers', `${name}.mjs`), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.stdout.setEncoding('utf8').on('data', (text) => {
      const match = /ready (\d+)/.exec(text);
      if (match) resolve({ child, port: Number(match[1]) });
    });
  });
}

async function inBatches(items, size, fn) {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

function percentile(sorted, p) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run(scenario) {
  const { child, port } = await startServer(scenario.server);
  try {
    const latencies = [];
    const subscribers = Array.from({ length: S }, () => new Subscriber(port, scenario.path, scenario.transport, (ms) => latencies.push(ms)));
    await inBatches(subscribers, 50, (s) => s.start('/bench/room'));
    const publisher = new Publisher(port, scenario.path);
    await publisher.start();
    // Let every subscriber's connect settle into its held state before measuring.
    await new Promise((resolve) => setTimeout(resolve, 1000));

    const expected = S * M;
    const cpuBefore = cpuMs(child.pid);
    const clientCpuBefore = process.cpuUsage();
    const started = performance.now();
    for (let seq = 0; seq < M; seq++) {
      const due = started + (seq * 1000) / R;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await publisher.publish('/bench/room', { seq, sentAt: performance.timeOrigin + performance.now() });
    }
    const deadline = performance.now() + 10_000;
    const total = () => subscribers.reduce((n, s) => n + s.received, 0);
    while (total() < expected && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const elapsedS = (performance.now() - started) / 1000;
    const cpuAfter = cpuMs(child.pid);
    const cpu = cpuAfter.total - cpuBefore.total;
    const userCpu = cpuAfter.user - cpuBefore.user;
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const delivered = total();
    const responses = subscribers.reduce((n, s) => n + s.responses, 0);
    const unique = subscribers.reduce((n, s) => n + s.seen.size, 0);
    const duplicates = subscribers.reduce((n, s) => n + s.duplicates, 0);
    const outOfOrder = subscribers.reduce((n, s) => n + s.outOfOrder, 0);
    latencies.sort((a, b) => a - b);
    for (const s of subscribers) s.stop();
    return {
      scenario: scenario.name,
      deliveriesPerS: Math.round(delivered / elapsedS),
      perResponse: delivered / responses,
      lost: expected - unique,
      duplicates,
      outOfOrder,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      serverCpuPer1k: (cpu / delivered) * 1000,
      serverUserCpuPer1k: (userCpu / delivered) * 1000,
      clientCpuPer1k: ((clientCpu.user + clientCpu.system) / 1000 / delivered) * 1000,
    };
  } finally {
    // SIGTERM lets a profiled server write its profile.
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

console.log(`fan-out: S=${S} subscribers, M=${M} messages at R=${R}/s, one channel; ${new Date().toISOString()}`);
const results = [];
for (const scenario of SCENARIOS) {
  const result = await run(scenario);
  results.push(result);
  console.log(
    `${result.scenario.padEnd(10)} deliveries/s ${String(result.deliveriesPerS).padStart(7)} (${result.perResponse.toFixed(2)} per response)  lost ${result.lost}  dup ${result.duplicates}  reordered ${result.outOfOrder}  ` +
      `p50 ${result.p50.toFixed(1)} ms  p99 ${result.p99.toFixed(1)} ms  server CPU ${result.serverCpuPer1k.toFixed(2)} ms/1k (user ${result.serverUserCpuPer1k.toFixed(2)})  (client ${result.clientCpuPer1k.toFixed(2)} ms/1k)`,
  );
}
const herald = (t) => results.find((r) => r.scenario === `herald-${t}`);
for (const r of results) {
  if (r.scenario.startsWith('herald')) continue;
  const h = herald(r.scenario.split('-')[1]);
  if (h) {
    console.log(
      `${r.scenario} / ${h.scenario} server CPU per delivery: ${(r.serverCpuPer1k / h.serverCpuPer1k).toFixed(1)}× ` +
        `(user CPU only: ${(r.serverUserCpuPer1k / h.serverUserCpuPer1k).toFixed(1)}×)`,
    );
  }
}
closeAgent();
