#!/usr/bin/env node
// Interval polling with smart intervals versus held long-polls (issue 19 item 4): requests per
// minute and publish→deliver latency for four pages — a forgotten hidden tab (no messages), an
// idle hidden tab (a message now and then), an active tab (a message every few seconds) and a
// chatty channel (several a second) —
// each once in interval polling and once long-polling. Node-side Herald clients against one
// in-process Herald; the page's visibility is simulated through the client's `activity` option;
// requests are counted in the client's `fetch`.
//
//   node bench/poll-modes.mjs [--seconds 60] [--max-interval 60000]
//
// Run from the repository root after `npm run build`. `--max-interval` is the server's
// (`--max-interval`): a polling client never waits longer than 3/4 of it, so with the server's
// default (10 s) a hidden tab polls every 7.5 s, not every 30 s.
import { parseArgs } from 'node:util';
import { createHerald } from '../dist/index.js';
import { Herald } from '../dist/client/index.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    'max-interval': { type: 'string', default: '60000' },
  },
});
const SECONDS = Number(values.seconds);
const WARMUP_MS = 3000;

const PAGES = [
  { name: 'forgotten hidden tab (no messages)', resting: true, everyMs: Infinity },
  { name: 'idle hidden tab', resting: true, everyMs: 15_000 },
  { name: 'active tab', resting: false, everyMs: 5_000 },
  { name: 'chatty channel', resting: false, everyMs: 200 },
];
const MODES = [
  { name: 'interval polling', options: { intervalPolling: 'always' } },
  { name: 'long-polling (held)', options: { intervalPolling: 'never' } },
];

const server = createHerald({ maxIntervalMs: Number(values['max-interval']), historySize: 1000 });
const { port } = await server.listen(0, '127.0.0.1');

const runs = [];
for (const page of PAGES) {
  for (const mode of MODES) {
    const channel = `/bench/${runs.length}`;
    const run = { page, mode, channel, requests: 0, connects: 0, latencies: [], counting: false, client: undefined };
    const counted = (input, init) => {
      if (run.counting) {
        run.requests++;
        if (typeof init?.body === 'string' && init.body.includes('"/meta/connect"')) run.connects++;
      }
      return fetch(input, init);
    };
    run.client = new Herald(`http://127.0.0.1:${port}/bayeux`, {
      transports: ['long-polling'],
      fetch: counted,
      activity: { isResting: () => page.resting, onWake: () => () => undefined },
      ...mode.options,
    });
    await run.client.subscribe(channel, (data) => {
      if (run.counting) run.latencies.push(Date.now() - data.sentAt);
    }).ready;
    runs.push(run);
  }
}

await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
for (const run of runs) run.counting = true;
const timers = runs.filter((run) => Number.isFinite(run.page.everyMs)).map((run) => setInterval(() => void server.publish(run.channel, { sentAt: Date.now() }), run.page.everyMs));
await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
for (const timer of timers) clearInterval(timer);
for (const run of runs) run.counting = false;

const percentile = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);
const rows = runs.map((run) => {
  const sorted = [...run.latencies].sort((a, b) => a - b);
  const perMinute = (n) => ((n * 60) / SECONDS).toFixed(1);
  return {
    page: run.page.name,
    mode: run.mode.name,
    'messages/min': perMinute(Number.isFinite(run.page.everyMs) ? Math.floor((SECONDS * 1000) / run.page.everyMs) : 0),
    'requests/min': perMinute(run.requests),
    'connects/min': perMinute(run.connects),
    delivered: run.latencies.length,
    'latency p50 ms': percentile(sorted, 50),
    'latency max ms': sorted.at(-1) ?? NaN,
  };
});
console.log(`${SECONDS} s measured, server max-interval ${values['max-interval']} ms, Node ${process.version}`);
console.table(rows);
console.log('| page | mode | messages/min | requests/min | delivered | latency p50, ms | latency max, ms |');
console.log('|---|---|---:|---:|---:|---:|---:|');
for (const row of rows) console.log(`| ${row.page} | ${row.mode} | ${row['messages/min']} | ${row['requests/min']} | ${row.delivered} | ${row['latency p50 ms']} | ${row['latency max ms']} |`);

for (const run of runs) run.client.close();
await server.close();
