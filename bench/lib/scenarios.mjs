// The scenarios of bench/compare.mjs, each measured on a fresh server and fresh load processes:
//
//   fanout  S subscribers on one channel, M messages at R/s: server CPU per 1,000 deliveries, latency,
//           lost / duplicated / reordered deliveries
//   burst   the same at a high rate (S = 200, 250 messages/s): server CPU per delivery and latency
//   idle    N idle subscribers: server memory (RSS after a full GC) per connection; then one publish
//           must reach all of them
//   storm   N clients connecting at once: time until all are ready, server CPU per subscription; one
//           publish made half-way must reach every client subscribed before it left, and one made
//           after must reach all
import { Load, publisherFor } from './load.mjs';
import { listenOverflows, startNchan, startNodeServer } from './servers.mjs';

export const CHANNEL = '/bench/room';
const DRAIN_TIMEOUT_MS = 10_000; // after the last publish, for deliveries still on their way
const START_INFLIGHT = 200; // clients starting at once where set-up is not what is measured
/** Subscribed by the client's clock this much before the publish left: the server must deliver it (clocks of two processes differ by less). */
const CLOCK_MARGIN_MS = 2;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.timeOrigin + performance.now();

export function percentile(sorted, p) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const PEERS = {
  'herald-ws': { label: 'Herald (`/sub` WebSocket)', server: 'herald', client: 'rest-ws', unwrap: 'herald', publish: 'rest', nchan: 'nchan-ws' },
  'herald-sse': { label: 'Herald (`/sub` SSE)', server: 'herald', client: 'rest-sse', unwrap: 'herald', publish: 'rest', nchan: 'nchan-sse' },
  'herald-bayeux-ws': { label: 'Herald (Bayeux WebSocket)', server: 'herald', client: 'bayeux-ws', path: '/bayeux', publish: 'rest', nchan: 'nchan-ws' },
  'herald-lp': { label: 'Herald (Bayeux long-polling, held)', server: 'herald', client: 'bayeux-lp', path: '/bayeux', publish: 'rest', nchan: 'nchan-ws' },
  'node-ws': { label: 'Node floor (`ws` upgrade, nothing else)', server: 'node-floor', client: 'rest-ws', unwrap: 'herald', publish: 'rest', nchan: 'nchan-ws' },
  'http-ws': { label: 'Node HTTP floor (upgrade by hand, no `ws`)', server: 'http-floor', client: 'rest-ws', unwrap: 'herald', publish: 'rest', nchan: 'nchan-ws' },
  'net-ws': { label: 'Node `net` floor (upgrade by hand, no HTTP parser, no `ws`)', server: 'net-floor', client: 'rest-ws', unwrap: 'herald', publish: 'rest', nchan: 'nchan-ws' },
  'node-sse': { label: 'Node floor (HTTP head, nothing else)', server: 'node-floor', client: 'rest-sse', unwrap: 'herald', publish: 'rest', nchan: 'nchan-sse' },
  'nchan-ws': { label: 'Nchan 1.3.6 (WebSocket)', server: 'nchan', client: 'rest-ws', unwrap: 'raw', publish: 'rest', nchan: 'nchan-ws' },
  'nchan-sse': { label: 'Nchan 1.3.6 (SSE)', server: 'nchan', client: 'rest-sse', unwrap: 'raw', publish: 'rest', nchan: 'nchan-sse' },
  'socketio-ws': { label: 'Socket.IO 4.8 (WebSocket)', server: 'socketio', client: 'socketio', publish: 'rest', nchan: 'nchan-ws' },
  'faye-ws': { label: 'Faye 1.4.3 (WebSocket)', server: 'faye', client: 'bayeux-ws', path: '/bayeux', publish: 'bayeux', nchan: 'nchan-ws' },
  'cometd-lp': { label: 'cometd-nodejs-server 1.2.1 (long-polling)', server: 'cometd', client: 'bayeux-lp', path: '/cometd', publish: 'bayeux', nchan: 'nchan-ws' },
};

/** Runs `fn(server, load, publisher)` on a fresh server and fresh load processes, stopping them all after. */
async function withPeer(peer, options, fn) {
  const server = peer.server === 'nchan' ? await startNchan() : await startNodeServer(peer.server, peer.server === 'herald' ? (peer.extraArgs ?? []) : []);
  const load = new Load(options.loadProcesses);
  const publisher = publisherFor(peer, server.port);
  try {
    await load.ready();
    await publisher.start();
    return await fn(server, load, publisher);
  } finally {
    publisher.close?.();
    await load.stop();
    await server.stop();
  }
}

function target(peer, port) {
  return { port, path: peer.path, channel: CHANNEL, unwrap: peer.unwrap };
}

function startFailures(started) {
  if (started.failed === 0) return undefined;
  return `${started.failed} clients failed to start: ${JSON.stringify(started.errors).slice(0, 300)}`;
}

/** CPU use of each load process, and the coordinator's, as a share of one core over the window. */
function loadShares(reports, coordinatorCpuMs, elapsedMs) {
  return { load: Math.max(...reports.map((r) => r.cpuMs / r.elapsedMs)), publisher: coordinatorCpuMs / elapsedMs };
}

function sum(reports, key) {
  return reports.reduce((n, r) => n + r[key], 0);
}

/**
 * `count` publishes, one after another, to a channel nobody subscribes to: a long-running server has
 * compiled its publish path long before; a fresh one interprets it for its first thousand requests.
 */
async function warmUp(publisher, count) {
  for (let i = 0; i < count; i++) await publisher.publish(WARM_UP_CHANNEL, { warmUp: i });
}

const WARM_UP_CHANNEL = '/bench/warm-up';

/** S subscribers, M messages at R/s, each stamped with its send time (after `options.warmup` unseen publishes). */
export async function fanout(peer, { subscribers: S, messages: M, rate: R }, options) {
  return withPeer(peer, options, async (server, load, publisher) => {
    const started = await load.start(peer.client, target(peer, server.port), S, START_INFLIGHT);
    await warmUp(publisher, options.warmup ?? 0);
    await sleep(1000); // every subscriber settled in its held state
    await load.mark();
    const cpuBefore = server.cpu();
    const ownBefore = process.cpuUsage();
    const t0 = performance.now();
    for (let seq = 0; seq < M; seq++) {
      const wait = t0 + (seq * 1000) / R - performance.now();
      if (wait > 0) await sleep(wait);
      await publisher.publish(CHANNEL, { seq, sentAt: now() });
    }
    const expected = started.ready * M;
    await load.waitForDeliveries(expected, DRAIN_TIMEOUT_MS);
    const elapsedMs = performance.now() - t0;
    const cpu = server.cpu();
    const own = process.cpuUsage(ownBefore);
    const reports = await load.report(M);
    const delivered = sum(reports, 'received');
    const latencies = Float64Array.from(reports.flatMap((r) => Array.from(r.latencies))).sort();
    return {
      clients: started.ready,
      failure: startFailures(started),
      deliveriesPerS: delivered / (elapsedMs / 1000),
      lost: sum(reports, 'lost'),
      duplicates: sum(reports, 'duplicates'),
      reordered: sum(reports, 'reordered'),
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      cpuPer1k: ((cpu.total - cpuBefore.total) / delivered) * 1000,
      userPer1k: ((cpu.user - cpuBefore.user) / delivered) * 1000,
      ...loadShares(reports, (own.user + own.system) / 1000, elapsedMs),
    };
  });
}

/** N idle subscribers: RSS growth per connection between two full GCs; then one publish must reach them all. */
export async function idle(peer, { n: N }, options) {
  return withPeer(peer, options, async (server, load, publisher) => {
    await sleep(500);
    await server.gc();
    const rssBefore = server.rss();
    const started = await load.start(peer.client, target(peer, server.port), N, options.idleInflight);
    await sleep(2000); // let set-up garbage and kept-alive request sockets settle
    await server.gc();
    const rssAfter = server.rss();
    await load.mark();
    const t0 = performance.now();
    await publisher.publish(CHANNEL, { seq: 0, sentAt: now() });
    await load.waitForDeliveries(started.ready, DRAIN_TIMEOUT_MS);
    const reports = await load.report(1);
    return {
      clients: started.ready,
      failure: startFailures(started),
      bytesPerConnection: (rssAfter - rssBefore) / started.ready,
      rssBeforeMiB: rssBefore / 2 ** 20,
      rssAfterMiB: rssAfter / 2 ** 20,
      lost: sum(reports, 'lost'),
      duplicates: sum(reports, 'duplicates'),
      reachAllMs: performance.now() - t0,
    };
  });
}

/** N clients connecting at once; a publish when half are ready, another once all are. */
export async function storm(peer, { n: N }, options) {
  return withPeer(peer, options, async (server, load, publisher) => {
    await sleep(500);
    await load.mark();
    const cpuBefore = server.cpu();
    const ownBefore = process.cpuUsage();
    const overflowsBefore = listenOverflows();
    const t0 = performance.now();
    const t0Epoch = now();
    const starting = load.start(peer.client, target(peer, server.port), N, options.stormInflight ?? N);
    let midStorm;
    const halfway = (async () => {
      while (load.readySoFar < N / 2 && !midStorm) await sleep(10);
      const sentAt = now();
      await publisher.publish(CHANNEL, { seq: 0, sentAt });
      midStorm = { sentAt, ackedAt: now(), readyThen: load.readySoFar };
    })();
    const started = await starting;
    const allReadyMs = performance.now() - t0;
    const cpu = server.cpu();
    const overflows = listenOverflows() - overflowsBefore;
    const own = process.cpuUsage(ownBefore);
    await halfway;
    const stormReports = await load.report(0);
    await sleep(500);
    await load.mark();
    await publisher.publish(CHANNEL, { seq: 1, sentAt: now() });
    await load.waitForDeliveries(started.ready, DRAIN_TIMEOUT_MS);
    await sleep(200); // late copies of the mid-storm publish
    const reports = await load.report(2, true);
    let mustReceive = 0;
    let lostMidStorm = 0;
    let receivedMidStorm = 0;
    let lostAfter = 0;
    const subscribedAfter = Float64Array.from(reports.flatMap((r) => Array.from(r.subscribedAt, (at) => at - t0Epoch))).sort();
    for (const r of reports) {
      r.subscribedAt.forEach((subscribedAt, i) => {
        if (r.got[0][i]) receivedMidStorm++;
        if (subscribedAt < midStorm.sentAt - CLOCK_MARGIN_MS) {
          mustReceive++;
          if (!r.got[0][i]) lostMidStorm++;
        }
        if (!r.got[1][i]) lostAfter++;
      });
    }
    return {
      clients: started.ready,
      failure: startFailures(started),
      retries: started.retries,
      listenOverflows: overflows,
      allReadyS: allReadyMs / 1000,
      halfSubscribedS: percentile(subscribedAfter, 50) / 1000,
      cpuPerSubscriptionUs: ((cpu.total - cpuBefore.total) / started.ready) * 1000,
      mustReceive,
      lostMidStorm,
      receivedMidStorm,
      publishAckMs: midStorm.ackedAt - midStorm.sentAt,
      lostAfter,
      duplicates: sum(reports, 'duplicates'),
      ...loadShares(stormReports, (own.user + own.system) / 1000, allReadyMs),
    };
  });
}
