#!/usr/bin/env node
// Scale: how many idle connections of each kind one server process holds, and whether one publish
// still reaches them all quickly (issue 16, item 3). For each peer, on a fresh server and fresh load
// processes (the clients of bench/compare.mjs, lib/clients.mjs, one subscription each, one channel):
//
//   1. N1 idle subscribers connect; full GC in the server; RSS and V8 heap read
//   2. more connect until N2; full GC; RSS and heap read again
//   3. slope = ΔRSS / ΔN between N1 and N2, and the RSS it projects at 100,000 and 1,000,000
//   4. one publish carrying its send time: p50 / p99 / max until each of the N2 clients had it, and
//      every client must have it exactly once
//
//   node bench/scale.mjs [--peers herald-sse,herald-ws,herald-bayeux-ws,herald-lp,nchan-sse,nchan-ws]
//                        [--n1 5000] [--n2 19000] [--load-processes 3] [--inflight 500]
//                        [--out bench/results/scale.md]
//
// N2 is bounded by the open-files limit: every process here (server and load processes) raises its
// soft limit to the hard one (lib/servers.mjs spawnRaised); the server holds N2 sockets plus a few.
// The load processes run on 127.0.0.2, 127.0.0.3, … (ephemeral ports per source address); their CPU
// is reported for the set-up and for the publish, and a warning printed past 80 % of a core.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { closeAgent } from './lib/bayeux-client.mjs';
import { Load, publisherFor } from './lib/load.mjs';
import { CHANNEL, PEERS, percentile } from './lib/scenarios.mjs';
import { children, killAll, startNchan, startNodeServer } from './lib/servers.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const DEFAULT_PEERS = ['herald-sse', 'herald-ws', 'herald-bayeux-ws', 'herald-lp'];
const SETTLE_MS = 2_000; // after a batch connects: set-up garbage and kept-alive request sockets settle
const DRAIN_TIMEOUT_MS = 10_000;
const LOAD_WARNING = 0.8;
const WATCHDOG_MS = 30 * 60_000;
const PROJECT_AT = [100_000, 1_000_000];

const { values } = parseArgs({
  options: {
    peers: { type: 'string', default: DEFAULT_PEERS.join(',') },
    n1: { type: 'string', default: '5000' },
    n2: { type: 'string', default: '19000' },
    'load-processes': { type: 'string', default: '3' },
    inflight: { type: 'string', default: '500' },
    out: { type: 'string', default: join(HERE, 'results', 'scale.md') },
  },
});
const peerNames = values.peers.split(',').filter(Boolean);
for (const p of peerNames) if (!PEERS[p]) throw new Error(`unknown peer ${p}: use ${Object.keys(PEERS).join(', ')}`);
const N1 = Number(values.n1);
const N2 = Number(values.n2);
if (!(N1 > 0 && N2 > N1)) throw new Error('--n1 and --n2: 0 < n1 < n2');
const loadProcesses = Number(values['load-processes']);
const inflight = Number(values.inflight);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.timeOrigin + performance.now();

async function abort(reason, code) {
  console.error(`${reason}: stopping`);
  const exits = [...children].map((child) => new Promise((resolve) => child.once('exit', resolve)));
  killAll();
  await Promise.race([Promise.all(exits), new Promise((resolve) => setTimeout(resolve, 2_000))]);
  process.exit(code);
}
process.on('exit', () => killAll());
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => abort(signal, 130));
setTimeout(() => abort(`watchdog: the benchmark ran for ${WATCHDOG_MS / 60_000} min`, 2), WATCHDOG_MS).unref();

/** RSS and heap after a full GC (heap only where the server has one: Node). */
async function memoryAfterGc(server) {
  await server.gc();
  const usage = await server.memory();
  return { rss: server.rss(), heap: usage?.heapUsed, external: usage ? usage.external : undefined };
}

/** Opens `count` more clients; the server's CPU per connection and the load processes' CPU share meanwhile. */
async function connect(load, server, peer, count) {
  await load.mark();
  const cpuBefore = server.cpu().total;
  const t0 = performance.now();
  const started = await load.start(peer.client, { port: server.port, path: peer.path, channel: CHANNEL, unwrap: peer.unwrap }, count, inflight);
  const seconds = (performance.now() - t0) / 1000;
  const cpuMs = server.cpu().total - cpuBefore;
  const reports = await load.report(0);
  if (started.failed > 0) throw new Error(`${started.failed} of ${count} clients failed to start: ${JSON.stringify(started.errors).slice(0, 300)}`);
  return { seconds, serverUsPerConnection: (cpuMs / count) * 1000, load: Math.max(...reports.map((r) => r.cpuMs / r.elapsedMs)) };
}

async function measure(peer) {
  const server = peer.server === 'nchan' ? await startNchan() : await startNodeServer(peer.server, peer.extraArgs ?? []);
  const load = new Load(loadProcesses);
  const publisher = publisherFor(peer, server.port);
  try {
    await load.ready();
    await publisher.start();
    await sleep(500);
    const base = await memoryAfterGc(server);
    const first = await connect(load, server, peer, N1);
    await sleep(SETTLE_MS);
    const at1 = await memoryAfterGc(server);
    console.log(`  ${peer.name}: ${N1} connected in ${first.seconds.toFixed(1)} s, RSS ${(at1.rss / 2 ** 20).toFixed(1)} MiB`);
    const second = await connect(load, server, peer, N2 - N1);
    await sleep(SETTLE_MS);
    const at2 = await memoryAfterGc(server);
    console.log(`  ${peer.name}: ${N2} connected in ${second.seconds.toFixed(1)} s, RSS ${(at2.rss / 2 ** 20).toFixed(1)} MiB`);

    // The publish: each delivery's latency from the send time it carries, read by the load processes.
    await load.mark();
    const cpuBefore = server.cpu().total;
    const sentAt = now();
    await publisher.publish(CHANNEL, { seq: 0, sentAt });
    const acked = now() - sentAt;
    const received = await load.waitForDeliveries(N2, DRAIN_TIMEOUT_MS);
    const publishCpuMs = server.cpu().total - cpuBefore;
    await sleep(200); // late duplicates, if any
    const reports = await load.report(1);
    const latencies = Float64Array.from(reports.flatMap((r) => Array.from(r.latencies))).sort();
    const slope = (at2.rss - at1.rss) / (N2 - N1);
    const heapSlope = at1.heap === undefined ? NaN : (at2.heap - at1.heap) / (N2 - N1);
    return {
      connections: reports.reduce((n, r) => n + r.clients, 0),
      rss0: base.rss,
      rss1: at1.rss,
      rss2: at2.rss,
      heap1: at1.heap,
      heap2: at2.heap,
      slope,
      heapSlope,
      perConnectionFromZero: (at2.rss - base.rss) / N2,
      projected: PROJECT_AT.map((n) => at2.rss + slope * (n - N2)),
      setupUs: (first.serverUsPerConnection * N1 + second.serverUsPerConnection * (N2 - N1)) / N2,
      setupLoad: Math.max(first.load, second.load),
      received,
      lost: reports.reduce((n, r) => n + r.lost, 0),
      duplicates: reports.reduce((n, r) => n + r.duplicates, 0),
      ackMs: acked,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies.at(-1),
      publishCpuMs,
      publishLoadMs: Math.max(...reports.map((r) => r.cpuMs)),
    };
  } finally {
    publisher.close?.();
    await load.stop();
    await server.stop();
  }
}

const mib = (bytes) => (Number.isFinite(bytes) ? (bytes / 2 ** 20).toFixed(1) : '—');
const gib = (bytes) => (bytes / 2 ** 30).toFixed(2);
const grouped = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '—');
const ms = (v) => (Number.isFinite(v) ? v.toFixed(0) : '—');
const percent = (v) => (Number.isFinite(v) ? `${Math.round(v * 100)} %` : '—');
const n = (v) => v.toLocaleString('en-US');

const results = [];
const startedAt = new Date();
console.log(`scale: ${peerNames.join(', ')}; N1 = ${N1}, N2 = ${N2}, ${loadProcesses} load processes; ${startedAt.toISOString()}`);
for (const name of peerNames) {
  const peer = { name, ...PEERS[name] };
  const t0 = performance.now();
  try {
    const f = await measure(peer);
    results.push({ peer, f });
    console.log(
      `  ${name}: slope ${grouped(f.slope)} B/conn, publish p50 ${ms(f.p50)} / p99 ${ms(f.p99)} / max ${ms(f.max)} ms, ` +
        `received ${f.received}/${N2}, lost ${f.lost}, dup ${f.duplicates} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
    if (f.setupLoad > LOAD_WARNING) console.log(`  ! a load process used ${percent(f.setupLoad)} of a core during set-up: its figures measure the client too`);
    if (f.publishLoadMs > f.max * LOAD_WARNING) console.log(`  ! the busiest load process was busy ${ms(f.publishLoadMs)} ms of the publish's ${ms(f.max)} ms: the latencies measure the client too`);
  } catch (error) {
    results.push({ peer, error: String(error?.message ?? error).split('\n')[0] });
    console.log(`  ${name} FAILED: ${error?.stack ?? error}`);
  }
}
closeAgent();

const ok = results.filter((r) => r.f);
const memoryHead = ['server (transport)', `RSS at 0, MiB`, `RSS at ${n(N1)}, MiB`, `heap at ${n(N1)}, MiB`, `RSS at ${n(N2)}, MiB`, `heap at ${n(N2)}, MiB`, 'slope, bytes / conn (RSS)', '(heap)', `bytes / conn, 0 → ${n(N2)}`, ...PROJECT_AT.map((p) => `RSS at ${n(p)}, GiB (projected)`), 'set-up, server CPU µs / conn', 'load CPU (set-up)'];
const publishHead = ['server (transport)', 'clients', 'got it', 'lost', 'dup', 'publish ack, ms', 'p50 ms', 'p99 ms', 'max ms', 'server CPU for the publish, ms', 'busiest load process CPU, ms'];
const table = (head, rows) => [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((cells) => `| ${cells.join(' | ')} |`)].join('\n');
const quoted = process.argv.slice(2).map((arg) => (/[\s"']/.test(arg) ? `"${arg}"` : arg));
const markdown = [
  `### scale.mjs, ${startedAt.toISOString().slice(0, 10)}`,
  '',
  '```sh',
  ['node bench/scale.mjs', ...quoted].join(' '),
  '```',
  '',
  `**Idle connections: N1 = ${n(N1)}, then N2 = ${n(N2)} in one server process (one subscription each, one channel), RSS and V8 heap after a full GC**`,
  '',
  table(
    memoryHead,
    ok.map(({ peer, f }) => [peer.label, mib(f.rss0), mib(f.rss1), mib(f.heap1), mib(f.rss2), mib(f.heap2), grouped(f.slope), grouped(f.heapSlope), grouped(f.perConnectionFromZero), ...f.projected.map(gib), grouped(f.setupUs), percent(f.setupLoad)]),
  ),
  '',
  `Slope = (RSS at ${n(N2)} − RSS at ${n(N1)}) ÷ ${n(N2 - N1)}. The projections are RSS at ${n(N2)} + slope × (N − ${n(N2)}): they assume the open-files limit is raised past N (here it is 20,000, so they were not measured) and that the slope stays linear.`,
  '',
  `**One publish to all ${n(N2)}: time from its send time until each client had it**`,
  '',
  table(
    publishHead,
    ok.map(({ peer, f }) => [peer.label, grouped(f.connections), grouped(f.received), grouped(f.lost), grouped(f.duplicates), ms(f.ackMs), ms(f.p50), ms(f.p99), ms(f.max), ms(f.publishCpuMs), ms(f.publishLoadMs)]),
  ),
  ...(results.some((r) => r.error) ? ['', 'Failures:', ...results.filter((r) => r.error).map((r) => `- ${r.peer.label}: ${r.error}`)] : []),
].join('\n');
console.log(`\n${markdown}`);
mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(values.out, `${markdown}\n`);
console.log(`(written to ${values.out})`);
process.exit(results.some((r) => r.error) ? 1 : 0);
