/**
 * The delivery checker on three `herald serve` nodes on Redis: every door at once through sticky
 * fault proxies, while nodes are killed and drained and Redis restarts, pauses and loses its
 * pub/sub connections, on a fixed seed that plays every fault not known open.
 * See README.md here for which defect of issue 14 each run catches when it is put back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runChecker } from './run.js';

test('three nodes on Redis: every acked message reaches every subscriber once, in order, or a gap says so (seed 3051)', async (t) => {
  const result = await runChecker(t, { seed: 3051, nodes: 3, faultPhaseMs: 28_000 });
  t.diagnostic(result.stats);
  assert.equal(result.violations.length, 0, result.report);
});

test('three nodes on Redis, pub/sub cut again and again: channels nobody heard yet and patterns are caught up or told of a gap (seed 7)', async (t) => {
  const result = await runChecker(t, { seed: 7, nodes: 3, faultPhaseMs: 8_000, faults: ['cut-pubsub'], doors: ['sse-fresh', 'herald-ws-pattern', 'sse', 'sse-away', 'herald-piggyback'] });
  t.diagnostic(result.stats);
  assert.equal(result.violations.length, 0, result.report);
});
