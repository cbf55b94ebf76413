/**
 * The delivery checker on one Herald (memory engine): every door at once through a fault proxy
 * that cuts connections and stalls readers (longer than --max-interval, so sessions expire), with
 * tokens that expire and sessions ended by a /meta/disconnect sent elsewhere, on a fixed seed.
 * See README.md here for which defect of issue 14 each run catches when it is put back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runChecker } from './run.js';

test('one node: every acked message reaches every subscriber once, in order, or a gap says so (seed 5)', async (t) => {
  const result = await runChecker(t, { seed: 5, nodes: 1, faultPhaseMs: 15_000, maxIntervalMs: 1500 });
  t.diagnostic(result.stats);
  assert.equal(result.violations.length, 0, result.report);
});

test('one node, history that forgets within half a second: a resume across what it forgot is told of the gap (seed 5)', async (t) => {
  const result = await runChecker(t, {
    seed: 5,
    nodes: 1,
    faultPhaseMs: 10_000,
    historyTtlMs: 500,
    faults: ['cut-some', 'stall'],
    doors: ['sse-away', 'sse', 'long-poll', 'herald-lp'],
  });
  t.diagnostic(result.stats);
  assert.equal(result.violations.length, 0, result.report);
});
