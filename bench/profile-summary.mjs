#!/usr/bin/env node
// Self time by function from a --cpu-prof profile (BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"),
// and with a regex, inclusive time of the functions it matches. Wall-clock samples: under contention a
// syscall or GC counts time the process spent descheduled, so compare shares, not milliseconds.
//
//   node bench/profile-summary.mjs <file.cpuprofile> [top = 45] [regex, e.g. dist/]
import { readFileSync } from 'node:fs';
const p = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const top = Number(process.argv[3] ?? 45);
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = p.timeDeltas; let total = 0;
const counts = new Map();
for (let i = 0; i < p.samples.length; i++) { counts.set(p.samples[i], (counts.get(p.samples[i]) ?? 0) + (dt[i] ?? 0)); }
for (const [id, t] of counts) {
  const n = byId.get(id); const cf = n.callFrame;
  const key = `${cf.functionName || '(anon)'} ${cf.url.replace(/.*\/(dist|node_modules)\//, '$1/').replace('node:', '')}:${cf.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + t); total += t;
}
const idle = [...self].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, t]) => a + t, 0);
console.log(`total ${(total / 1000).toFixed(0)} ms, non-idle ${((total - idle) / 1000).toFixed(0)} ms`);
for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(t / 1000).toFixed(1).padStart(8)} ms ${(100 * t / (total - idle)).toFixed(1).padStart(5)}%  ${k}`);
// inclusive time for herald files
if (process.argv[4]) {
  const parent = new Map(); for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map();
  for (const [id, t] of counts) { const seen = new Set(); let cur = id; while (cur !== undefined) { const n = byId.get(cur); const cf = n.callFrame; const key = `${cf.functionName || '(anon)'} ${cf.url.replace(/.*\/(dist|node_modules)\//, '$1/').replace('node:', '')}:${cf.lineNumber + 1}`; if (!seen.has(key)) { seen.add(key); incl.set(key, (incl.get(key) ?? 0) + t); } cur = parent.get(cur); } }
  console.log('--- inclusive');
  for (const [k, t] of [...incl].filter(([k]) => k.match(new RegExp(process.argv[4]))).sort((a, b) => b[1] - a[1]).slice(0, 60)) console.log(`${(t / 1000).toFixed(1).padStart(8)} ms ${(100 * t / (total - idle)).toFixed(1).padStart(5)}%  ${k}`);
}
