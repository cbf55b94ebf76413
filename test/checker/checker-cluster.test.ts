/**
 * The delivery checker on three `herald serve` nodes on Redis: every door at once through sticky
 * fault proxies, while nodes are killed and drained and Redis restarts and pauses, on a fixed seed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runChecker } from './run.js';

test('three nodes on Redis: every acked message reaches every subscriber once, in order, or a gap says so (seed 2282)', async (t) => {
  const result = await runChecker(t, { seed: 2282, nodes: 3, faultPhaseMs: 25_000 });
  t.diagnostic(result.stats);
  assert.equal(result.violations.length, 0, result.report);
});
