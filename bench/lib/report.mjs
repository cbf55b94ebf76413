// Tables for bench/compare.mjs: each figure beside its ratio to Nchan measured in the same run
// (same transport: SSE to Nchan's SSE, everything else to Nchan's WebSocket), as the median over the
// runs of the figure and of the per-run ratio.

const fixed = (digits) => (v) => (Number.isFinite(v) ? v.toFixed(digits) : '—');
const grouped = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '—');
const percent = (v) => (Number.isFinite(v) ? `${Math.round(v * 100)} %` : '—');

/** Columns per scenario: key, heading, format, and whether it gets a ÷ Nchan column. */
export const COLUMNS = {
  fanout: [
    ['deliveriesPerS', 'deliveries/s', grouped],
    ['lost', 'lost', grouped],
    ['duplicates', 'dup', grouped],
    ['reordered', 'reordered', grouped],
    ['p50', 'p50 ms', fixed(1), true],
    ['p99', 'p99 ms', fixed(1), true],
    ['cpuPer1k', 'server CPU ms / 1k deliveries', fixed(2), true],
    ['userPer1k', '(user)', fixed(2)],
    ['load', 'load process CPU', percent],
  ],
  idle: [
    ['clients', 'connections', grouped],
    ['bytesPerConnection', 'bytes / connection', grouped, true],
    ['rssAfterMiB', 'RSS after, MiB', fixed(1)],
    ['lost', 'lost (publish to all)', grouped],
    ['reachAllMs', 'publish reached all, ms', grouped],
  ],
  storm: [
    ['clients', 'clients', grouped],
    ['halfSubscribedS', 'half subscribed, s', fixed(2)],
    ['allReadyS', 'all ready, s', fixed(2), true],
    ['cpuPerSubscriptionUs', 'server CPU µs / subscription', grouped, true],
    ['mustReceive', 'subscribed before mid-storm publish', grouped],
    ['lostMidStorm', 'of which lost it', grouped],
    ['receivedMidStorm', 'got mid-storm publish', grouped],
    ['publishAckMs', 'its ack, ms', grouped],
    ['lostAfter', 'lost after storm', grouped],
    ['retries', 'start retries', grouped],
    ['listenOverflows', 'listen queue overflows (machine)', grouped],
    ['load', 'load process CPU', percent],
  ],
};
COLUMNS.burst = COLUMNS.fanout;

export function median(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * `results`: [{run, scenario, peer, label, nchan, figures}]. Returns the markdown of one scenario:
 * medians over the runs, ratios to the same run's Nchan (of the matching transport).
 */
export function scenarioTable(scenario, results, runs) {
  const columns = COLUMNS[scenario];
  const rows = results.filter((r) => r.scenario === scenario);
  const peers = [...new Map(rows.map((r) => [r.peer, r])).values()];
  const head = ['server (transport)'];
  for (const [, heading, , ratio] of columns) head.push(heading, ...(ratio ? ['÷ Nchan'] : []));
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const peer of peers) {
    const mine = rows.filter((r) => r.peer === peer.peer);
    const cells = [peer.label];
    for (const [key, , format, ratio] of columns) {
      cells.push(format(median(mine.map((r) => r.figures[key]))));
      if (!ratio) continue;
      const ratios = mine.map((r) => {
        const nchan = rows.find((n) => n.run === r.run && n.peer === peer.nchan);
        return nchan ? r.figures[key] / nchan.figures[key] : NaN;
      });
      const value = median(ratios);
      cells.push(Number.isFinite(value) ? `${value.toFixed(2)}×` : '—');
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  const failures = rows.filter((r) => r.figures.failure || r.error).map((r) => `- run ${r.run}, ${r.label}: ${r.error ?? r.figures.failure}`);
  const note = runs > 1 ? `Medians of ${runs} runs; each ratio is the median of the per-run ratios.` : 'One run.';
  return [...lines, '', note, ...(failures.length ? ['', 'Failures:', ...failures] : [])].join('\n');
}

/** One line for the console as a measurement ends. */
export function oneLine(scenario, figures) {
  return COLUMNS[scenario]
    .filter(([key]) => figures[key] !== undefined)
    .map(([key, heading, format]) => `${heading} ${format(figures[key])}`)
    .join(', ');
}
