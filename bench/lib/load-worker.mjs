// One load process of bench/compare.mjs (started by lib/load.mjs with an IPC channel): holds a share of
// the clients, counts what they receive (per client: every seq seen, duplicates, order) and the
// latency of each delivery, and answers the coordinator's commands:
//
//   start {kind, target, count, inflight}  open `count` clients, at most `inflight` starting at once;
//                                          'progress' while they start, then 'started'
//   mark                                   start a measured window: CPU baseline, latencies cleared
//   count                                  deliveries so far
//   report {seqs, perClient}               the window: this process's CPU, losses against seqs
//                                          0..seqs-1 for every ready client, latencies; with perClient,
//                                          each client's subscribedAt and which of those seqs it got
//   stop                                   close every client and exit
import { CLIENT_KINDS } from './clients.mjs';

const MAX_ATTEMPTS = 5; // a client whose start fails (refused, reset) is started again, this many times in all

const clients = [];
let latencies = [];
let received = 0;
let window = { cpu: process.cpuUsage(), at: performance.now() };
let failed = 0;
let retries = 0;
const errors = new Map(); // message → count

const send = (message) => process.send(message);

function record(state, data) {
  const { seq, sentAt } = data;
  latencies.push(performance.timeOrigin + performance.now() - sentAt);
  received++;
  if (state.seen.has(seq)) state.duplicates++;
  else state.seen.add(seq);
  if (seq < state.last) state.reordered++;
  state.last = seq;
}

async function startOne(kind, target) {
  for (let attempt = 1; ; attempt++) {
    const state = { seen: new Set(), duplicates: 0, reordered: 0, last: -1, client: undefined };
    const client = new CLIENT_KINDS[kind](target, (data) => record(state, data));
    state.client = client;
    try {
      await client.start();
      return state;
    } catch (error) {
      client.stop();
      const key = String(error?.message ?? error).slice(0, 120);
      errors.set(key, (errors.get(key) ?? 0) + 1);
      if (attempt >= MAX_ATTEMPTS) return undefined;
      retries++;
    }
  }
}

async function start({ kind, target, count, inflight }) {
  let next = 0;
  let ready = 0;
  const progress = setInterval(() => send({ type: 'progress', ready, failed }), 20);
  const lane = async () => {
    while (next < count) {
      next++;
      const state = await startOne(kind, target);
      if (state) {
        clients.push(state);
        ready++;
      } else failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(inflight, count) }, lane));
  clearInterval(progress);
  send({ type: 'started', ready, failed, retries, errors: Object.fromEntries(errors) });
}

function report({ seqs, perClient }) {
  const cpu = process.cpuUsage(window.cpu);
  let lost = 0;
  let duplicates = 0;
  let reordered = 0;
  for (const state of clients) {
    for (let seq = 0; seq < seqs; seq++) if (!state.seen.has(seq)) lost++;
    duplicates += state.duplicates;
    reordered += state.reordered;
  }
  const result = {
    type: 'report',
    clients: clients.length,
    cpuMs: (cpu.user + cpu.system) / 1000,
    elapsedMs: performance.now() - window.at,
    received,
    lost,
    duplicates,
    reordered,
    latencies: Float64Array.from(latencies),
  };
  if (perClient) {
    result.subscribedAt = Float64Array.from(clients, (s) => s.client.subscribedAt);
    result.got = Array.from({ length: seqs }, (_, seq) => Uint8Array.from(clients, (s) => (s.seen.has(seq) ? 1 : 0)));
  }
  send(result);
}

process.on('message', (message) => {
  switch (message.cmd) {
    case 'start':
      start(message).catch((error) => send({ type: 'error', message: String(error?.stack ?? error) }));
      break;
    case 'mark':
      latencies = [];
      received = 0;
      window = { cpu: process.cpuUsage(), at: performance.now() };
      send({ type: 'marked' });
      break;
    case 'count':
      send({ type: 'count', received });
      break;
    case 'report':
      report(message);
      break;
    case 'stop':
      for (const state of clients) state.client.stop();
      send({ type: 'stopped' });
      process.disconnect();
      setTimeout(() => process.exit(0), 200).unref();
      break;
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'hello' });
