#!/usr/bin/env node
// What an idle connection holds, by constructor: for each peer, a fresh server (as bench/compare.mjs
// starts it, --expose-gc and the IPC hook of servers/gc-hook.mjs), a full GC and a heap snapshot with
// no client, then N idle subscribers, a full GC and a second snapshot; the objects' self sizes are
// summed per type and constructor in each, and the difference shown per connection, largest first,
// beside process.memoryUsage() growth (RSS, V8 heap used and committed, external) per connection:
// heapTotal − heapUsed is room V8 holds between live objects; RSS − heapTotal is what lives outside
// V8's heap (socket and parser natives, malloc).
//
//   node bench/heap-diff.mjs [--peers herald-ws,herald-sse,herald-bayeux-ws,herald-lp] [--n 2000]
//                            [--top 30] [--dir /tmp/heap-diff]
//   node bench/heap-diff.mjs before.heapsnapshot after.heapsnapshot [--per 2000] [--top 30]
//
// Run from the repository root after `npm run build` and `npm install --prefix bench`.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Load, publisherFor } from './lib/load.mjs';
import { CHANNEL, PEERS } from './lib/scenarios.mjs';
import { killAll, startNodeServer } from './lib/servers.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    peers: { type: 'string', default: 'herald-ws,herald-sse,herald-bayeux-ws,herald-lp' },
    n: { type: 'string', default: '2000' },
    per: { type: 'string' },
    top: { type: 'string', default: '30' },
    dir: { type: 'string', default: '/tmp/heap-diff' },
    'load-processes': { type: 'string', default: '2' },
  },
});
const TOP = Number(values.top);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Self sizes and counts per "type constructor" of one snapshot file. */
export function summarise(path) {
  const { snapshot, nodes, strings } = JSON.parse(readFileSync(path, 'utf8'));
  const fields = snapshot.meta.node_fields;
  const types = snapshot.meta.node_types[0];
  const stride = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const groups = new Map();
  let total = 0;
  for (let i = 0; i < nodes.length; i += stride) {
    const type = types[nodes[i + typeAt]];
    const size = nodes[i + sizeAt];
    let key;
    if (type.includes('string')) key = 'string';
    else if (type === 'code' || type === 'number' || type === 'bigint' || type === 'symbol' || type === 'regexp') key = type;
    else key = `${type} ${String(strings[nodes[i + nameAt]]).slice(0, 70)}`;
    const group = groups.get(key) ?? { count: 0, bytes: 0 };
    group.count++;
    group.bytes += size;
    groups.set(key, group);
    total += size;
  }
  return { groups, total };
}

/** The largest per-connection differences between two summaries, as printed lines. */
export function diffLines(before, after, per) {
  const keys = new Set([...before.groups.keys(), ...after.groups.keys()]);
  const rows = [...keys].map((key) => {
    const a = before.groups.get(key) ?? { count: 0, bytes: 0 };
    const b = after.groups.get(key) ?? { count: 0, bytes: 0 };
    return { key, count: (b.count - a.count) / per, bytes: (b.bytes - a.bytes) / per };
  });
  rows.sort((x, y) => Math.abs(y.bytes) - Math.abs(x.bytes));
  const lines = [`  heap self size per connection: ${((after.total - before.total) / per).toFixed(0)} B`, '    B/conn  objs/conn  type constructor'];
  for (const row of rows.slice(0, TOP)) lines.push(`  ${row.bytes.toFixed(0).padStart(8)}  ${row.count.toFixed(2).padStart(9)}  ${row.key}`);
  return lines;
}

async function snapshotOf(server, path) {
  const done = new Promise((resolve) => server.child.once('message', resolve));
  server.child.send({ snapshot: path });
  return (await done).snapshot;
}

async function measure(name, n, dir) {
  const peer = PEERS[name];
  const server = await startNodeServer(peer.server, peer.extraArgs ?? []);
  const load = new Load(Number(values['load-processes']));
  const publisher = publisherFor(peer, server.port);
  try {
    await load.ready();
    await publisher.start();
    // One publish first, so the code paths a connection meets are compiled in both snapshots.
    await publisher.publish(CHANNEL, { seq: 0 });
    await sleep(500);
    await server.gc();
    const memBefore = await server.memory();
    const rssBefore = server.rss();
    const before = await snapshotOf(server, join(dir, `${name}-0.heapsnapshot`));
    const started = await load.start(peer.client, { port: server.port, path: peer.path, channel: CHANNEL, unwrap: peer.unwrap }, n, 500);
    await sleep(2000);
    await server.gc();
    const memAfter = await server.memory();
    const rssAfter = server.rss();
    const after = await snapshotOf(server, join(dir, `${name}-${n}.heapsnapshot`));
    const per = started.ready;
    const d = (field) => ((memAfter[field] - memBefore[field]) / per).toFixed(0);
    console.log(`\n${peer.label}: ${per} connections`);
    console.log(`  per connection: RSS ${((rssAfter - rssBefore) / per).toFixed(0)} B (/proc), heapUsed ${d('heapUsed')} B, heapTotal ${d('heapTotal')} B, external ${d('external')} B, arrayBuffers ${d('arrayBuffers')} B; RSS − heap ${((rssAfter - rssBefore - (memAfter.heapUsed - memBefore.heapUsed)) / per).toFixed(0)} B, RSS − heapTotal ${((rssAfter - rssBefore - (memAfter.heapTotal - memBefore.heapTotal)) / per).toFixed(0)} B`);
    for (const line of diffLines(summarise(before), summarise(after), per)) console.log(line);
  } finally {
    publisher.close?.();
    await load.stop();
    await server.stop();
  }
}

if (positionals.length === 2) {
  const per = Number(values.per ?? 1);
  for (const line of diffLines(summarise(positionals[0]), summarise(positionals[1]), per)) console.log(line);
} else {
  mkdirSync(values.dir, { recursive: true });
  try {
    for (const name of values.peers.split(',').filter(Boolean)) await measure(name, Number(values.n), values.dir);
  } finally {
    killAll();
  }
}
