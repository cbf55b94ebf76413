#!/usr/bin/env node
// The delivery checker's long mode: runs after run of the checker (test/checker/run.ts) — real
// clients on every door, publishers on REST, Bayeux and the API, a seeded fault schedule — for
// --minutes, each run with the next seed, and stops at the first violation, printing its seed and
// minimal history (replay it with --seed <seed> --runs 1).
//
//   node bench/checker.mjs [--minutes 10] [--nodes 1|3] [--seed N] [--phase 60] [--runs N]
//                          [--faults cut-all,kill-node,…] [--doors sse,faye-ws,…] [--all-faults] [--verbose]
//                          [--history-ttl MS] [--max-interval MS]
//
// Run from the repository root after `npm run build && npx tsc -p tsconfig.test.json` (it imports
// the compiled checker from build/). --all-faults also plays the faults listed in KNOWN_OPEN
// (defects still open on main). Three nodes need redis-server on the PATH (or REDIS_SERVER=…).
// --history-ttl makes history forget (the sse-away door resumes across what it forgot: issue 14
// item 1); --max-interval (one node) makes long stalls expire Bayeux sessions (item 6). See
// test/checker/README.md for the doors and which run catches which defect when it is put back;
// --doors herald-poll,herald-piggyback plays issue 19's paths (interval polling, deliveries on
// publish replies and on the application's replies through herald.fetch) alone.
// Every process and server a run starts is stopped when the run ends.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = dirname(fileURLToPath(import.meta.url));
const RUN = join(HERE, '..', 'build', 'test', 'checker', 'run.js');
const SCHEDULE = join(HERE, '..', 'build', 'test', 'checker', 'schedule.js');
if (!existsSync(RUN)) {
  console.error('checker: build it first: npm run build && npx tsc -p tsconfig.test.json');
  process.exit(2);
}
const { runChecker, defaultFaults, KNOWN_OPEN, DOOR_NAMES } = await import(pathToFileURL(RUN).href);
const { ONE_NODE_FAULTS, CLUSTER_FAULTS } = await import(pathToFileURL(SCHEDULE).href);

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    nodes: { type: 'string', default: '1' },
    seed: { type: 'string' },
    phase: { type: 'string', default: '60' },
    runs: { type: 'string' },
    faults: { type: 'string' },
    doors: { type: 'string' },
    'all-faults': { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    'history-ttl': { type: 'string' },
    'max-interval': { type: 'string' },
  },
});
const nodes = Number(values.nodes) === 3 ? 3 : 1;
const supported = nodes === 1 ? ONE_NODE_FAULTS : CLUSTER_FAULTS;
const faults = values.faults !== undefined ? values.faults.split(',') : values['all-faults'] ? [...supported] : defaultFaults(nodes);
for (const fault of faults) {
  if (!supported.includes(fault)) {
    console.error(`checker: fault ${fault} is not one of ${supported.join(', ')} (with ${nodes} node(s))`);
    process.exit(2);
  }
}
const doors = values.doors?.split(',');
for (const door of doors ?? []) {
  if (!DOOR_NAMES().includes(door)) {
    console.error(`checker: door ${door} is not one of ${DOOR_NAMES().join(', ')}`);
    process.exit(2);
  }
}
const tuning = {
  ...(values['history-ttl'] === undefined ? {} : { historyTtlMs: Number(values['history-ttl']) }),
  ...(values['max-interval'] === undefined ? {} : { maxIntervalMs: Number(values['max-interval']) }),
};
const until = Date.now() + Number(values.minutes) * 60_000;
const maxRuns = values.runs === undefined ? Infinity : Number(values.runs);
let seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const skipped = values['all-faults'] ? [] : KNOWN_OPEN.filter((open) => open.doors === undefined && !faults.includes(open.fault));
console.log(`checker: ${nodes} node(s), faults ${faults.join(', ')}${skipped.length > 0 ? ` (known open, not played: ${skipped.map((o) => o.fault).join(', ')})` : ''}`);

const totals = { runs: 0, faults: 0, publishes: 0, acked: 0, deliveries: 0, gaps: 0 };
for (let run = 0; run < maxRuns && Date.now() < until; run++, seed++) {
  const cleanups = [];
  const hooks = { after: (fn) => cleanups.push(fn) };
  const phaseMs = Math.min(Number(values.phase) * 1000, Math.max(5_000, until - Date.now() - 30_000));
  let result;
  try {
    result = await runChecker(hooks, { seed, nodes, faultPhaseMs: phaseMs, faults, doors, allFaults: values['all-faults'], ...tuning, log: values.verbose ? console.log : undefined });
  } finally {
    while (cleanups.length > 0) await cleanups.pop()();
  }
  const { history } = result;
  totals.runs++;
  totals.faults += history.faults.length;
  totals.publishes += history.publishes.length;
  totals.acked += history.publishes.filter((p) => p.status === 'acked').length;
  for (const s of history.subscribers) {
    totals.deliveries += s.observations.filter((o) => o.kind === 'deliver').length;
    totals.gaps += s.observations.filter((o) => o.kind === 'gap').length;
  }
  console.log(result.stats);
  if (result.violations.length > 0) {
    console.log(result.report);
    console.log(`checker: FAILED on seed ${seed}; replay: node bench/checker.mjs --nodes ${nodes} --seed ${seed} --runs 1 --phase ${phaseMs / 1000} --faults ${faults.join(',')}${doors === undefined ? '' : ` --doors ${doors.join(',')}`}${values['all-faults'] ? ' --all-faults' : ''}${values['history-ttl'] === undefined ? '' : ` --history-ttl ${values['history-ttl']}`}${values['max-interval'] === undefined ? '' : ` --max-interval ${values['max-interval']}`}`);
    process.exit(1);
  }
}
console.log(`checker: clean: ${totals.runs} runs, ${totals.faults} faults, ${totals.publishes} publishes (${totals.acked} acked), ${totals.deliveries} deliveries, losses 0, gaps ${totals.gaps}`);
process.exit(0);
