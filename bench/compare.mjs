#!/usr/bin/env node
// Herald beside Nchan, Socket.IO, Faye and cometd-nodejs-server, every scenario for every peer in one
// run, each figure with its ratio to Nchan measured in the same run (lib/scenarios.mjs says what each
// scenario measures, lib/report.mjs how the tables are made):
//
//   node bench/compare.mjs [--scenarios fanout,idle,storm,burst] [--peers herald-ws,nchan-ws,…]
//                          [--runs 3] [--n 10000] [--subscribers 1000] [--messages 200] [--rate 20]
//                          [--burst-subscribers 200] [--burst-messages 1000] [--burst-rate 250]
//                          [--herald-args "--write-delay 5ms"] [--load-processes 2]
//                          [--storm-inflight N] [--warmup 3000] [--out bench/results/latest.md]
//
// Run from the repository root after `npm run build` and `npm install --prefix bench`. Nchan is
// Debian's nginx + libnginx-mod-nchan (installed with apt-get when missing, as root). Every server
// runs fresh on 127.0.0.1 for each measurement; the clients are spread over several load processes,
// each on its own source address (127.0.0.2, 127.0.0.3, …), whose CPU is recorded: a warning is
// printed when one passes 80 % of a core, as its figures then measure the client. With
// --herald-args, the burst scenario runs each Herald peer twice, without and with those
// `herald serve` flags. Fan-out and burst measure a warm server: before the measured messages every
// peer gets --warmup publishes to a channel nobody subscribes to (a server in service has compiled
// its publish path long ago; a fresh Node process interprets it for its first thousands of requests,
// which measured here costs about 1 µs per delivery in the burst); --warmup 0 measures it cold. The
// storm stays cold on purpose: a reconnect storm after a deploy meets a fresh process.
// The markdown is printed and written to --out.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { closeAgent } from './lib/bayeux-client.mjs';
import { oneLine, scenarioTable } from './lib/report.mjs';
import { fanout, idle, PEERS, storm } from './lib/scenarios.mjs';
import { children, killAll } from './lib/servers.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const SCENARIOS = ['fanout', 'idle', 'storm', 'burst'];
const LOAD_WARNING = 0.8; // of one core
const WATCHDOG_MS = 3 * 60 * 60_000;

// `--herald-args "--write-delay 5ms"`: a value that starts with a dash, which parseArgs takes only as `--herald-args=…`.
const argv = process.argv.slice(2).map((arg, i, all) => (all[i - 1] === '--herald-args' ? `=${arg}` : arg));
const args = argv.flatMap((arg, i) => (arg.startsWith('=') && argv[i - 1] === '--herald-args' ? [] : arg === '--herald-args' && argv[i + 1]?.startsWith('=') ? [`${arg}${argv[i + 1]}`] : [arg]));
const { values } = parseArgs({
  args,
  options: {
    scenarios: { type: 'string', default: SCENARIOS.join(',') },
    peers: { type: 'string', default: Object.keys(PEERS).filter((name) => !/^(node|net|http)-/.test(name)).join(',') }, // node-ws, node-sse, http-ws, net-ws: the floors, asked by name
    runs: { type: 'string', default: '1' },
    n: { type: 'string', default: '10000' },
    subscribers: { type: 'string', default: '1000' },
    messages: { type: 'string', default: '200' },
    rate: { type: 'string', default: '20' },
    'burst-subscribers': { type: 'string', default: '200' },
    'burst-messages': { type: 'string', default: '1000' },
    'burst-rate': { type: 'string', default: '250' },
    'herald-args': { type: 'string', default: '' },
    'load-processes': { type: 'string', default: '2' },
    'storm-inflight': { type: 'string' },
    'idle-inflight': { type: 'string', default: '500' },
    warmup: { type: 'string', default: '3000' },
    out: { type: 'string', default: join(HERE, 'results', 'latest.md') },
  },
});

const scenarios = values.scenarios.split(',').filter(Boolean);
const peerNames = values.peers.split(',').filter(Boolean);
for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}: use ${SCENARIOS.join(', ')}`);
for (const p of peerNames) if (!PEERS[p]) throw new Error(`unknown peer ${p}: use ${Object.keys(PEERS).join(', ')}`);
const runs = Number(values.runs);
const heraldArgs = values['herald-args'].split(' ').filter(Boolean);
const options = {
  loadProcesses: Number(values['load-processes']),
  stormInflight: values['storm-inflight'] === undefined ? undefined : Number(values['storm-inflight']),
  idleInflight: Number(values['idle-inflight']),
  warmup: Number(values.warmup),
};
const params = {
  fanout: { subscribers: Number(values.subscribers), messages: Number(values.messages), rate: Number(values.rate) },
  burst: { subscribers: Number(values['burst-subscribers']), messages: Number(values['burst-messages']), rate: Number(values['burst-rate']) },
  idle: { n: Number(values.n) },
  storm: { n: Number(values.n) },
};
const MEASURE = { fanout, burst: fanout, idle, storm };

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

/** The peers a scenario runs: with --herald-args, burst adds each Herald peer with those flags. */
function peersOf(scenario) {
  const peers = peerNames.map((name) => ({ name, ...PEERS[name] }));
  if (scenario !== 'burst' || heraldArgs.length === 0) return peers;
  return peers.flatMap((p) => (p.server === 'herald' ? [p, { ...p, name: `${p.name}+args`, label: `${p.label}, ${heraldArgs.join(' ')}`, extraArgs: heraldArgs }] : [p]));
}

function warmth() {
  return options.warmup > 0 ? `, after ${options.warmup} warm-up publishes to another channel` : ', cold (no warm-up)';
}

function describe(scenario) {
  const p = params[scenario];
  switch (scenario) {
    case 'fanout':
      return `fan-out: S = ${p.subscribers} subscribers on one channel, M = ${p.messages} messages at R = ${p.rate}/s${warmth()}`;
    case 'burst':
      return `burst: S = ${p.subscribers} subscribers on one channel, M = ${p.messages} messages at R = ${p.rate}/s${warmth()}`;
    case 'idle':
      return `idle: N = ${p.n} idle subscribers, server RSS growth per connection after a full GC`;
    case 'storm':
      return `storm: N = ${p.n} clients connecting at once (${options.stormInflight ?? 'all'} starting at a time), a publish half-way and one after`;
  }
}

const results = [];
const startedAt = new Date();
console.log(`compare: ${scenarios.join(', ')} × ${peerNames.join(', ')}, ${runs} run(s), ${options.loadProcesses} load processes; ${startedAt.toISOString()}`);
for (let run = 1; run <= runs; run++) {
  for (const scenario of scenarios) {
    console.log(`\nrun ${run}, ${describe(scenario)}`);
    for (const peer of peersOf(scenario)) {
      const row = { run, scenario, peer: peer.name, label: peer.label, nchan: peer.nchan, figures: {} };
      const t0 = performance.now();
      try {
        row.figures = await MEASURE[scenario](peer, params[scenario], options);
        console.log(`  ${peer.name.padEnd(22)} ${oneLine(scenario, row.figures)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
        if (row.figures.failure) console.log(`  ! ${row.figures.failure}`);
        if (row.figures.load > LOAD_WARNING) console.log(`  ! a load process used ${Math.round(row.figures.load * 100)} % of a core: its figures measure the client too`);
        if (row.figures.publisher > LOAD_WARNING) console.log(`  ! the publisher used ${Math.round(row.figures.publisher * 100)} % of a core`);
      } catch (error) {
        row.error = String(error?.message ?? error).split('\n')[0];
        console.log(`  ${peer.name.padEnd(22)} FAILED: ${error?.stack ?? error}`);
      }
      results.push(row);
    }
  }
}
closeAgent();

const quoted = process.argv.slice(2).map((arg) => (/[\s"']/.test(arg) ? `"${arg}"` : arg));
const commandLine = ['node bench/compare.mjs', ...quoted].join(' ');
const markdown = [
  `### compare.mjs, ${startedAt.toISOString().slice(0, 10)}`,
  '',
  '```sh',
  commandLine,
  '```',
  '',
  ...scenarios.flatMap((scenario) => [`**${describe(scenario)}**`, '', scenarioTable(scenario, results, runs), '']),
].join('\n');
console.log(`\n${markdown}`);
mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(values.out, `${markdown}\n`);
console.log(`(written to ${values.out})`);
