/**
 * The delivery checker on one Herald (memory engine): every door at once through a fault proxy
 * that cuts connections and stalls readers, with tokens that expire, on a fixed seed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runChecker } from './run.js';

test('one node: every acked message reaches every subscriber once, in order, or a gap says so (seed 1410)', async (t) => {
  const result = await runChecker(t, { seed: 1410, nodes: 1, faultPhaseMs: 15_000 });
  t.diagnostic(result.stats);
  assert.equal(result.violations.length, 0, result.report);
});
