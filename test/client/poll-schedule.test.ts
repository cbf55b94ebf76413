/** Smart intervals (PollSchedule) and the notice of cut holds (HoldCuts), without a network. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ActivitySource } from '../../src/client/activity.js';
import { HoldCuts } from '../../src/client/hold-cuts.js';
import { PollSchedule } from '../../src/client/poll-schedule.js';

function page() {
  const wakes = new Set<() => void>();
  const state = { resting: false };
  const activity: ActivitySource = { isResting: () => state.resting, onWake: (wake) => (wakes.add(wake), () => wakes.delete(wake)) };
  return { activity, state, wake: () => wakes.forEach((wake) => wake()) };
}

const ADVICE = { interval: 0, maxInterval: 120_000 };

test('short while active, doubling to the ceiling while resting, short again on a delivery or a wake', () => {
  const { activity, state, wake } = page();
  const schedule = new PollSchedule({ minMs: 1000, maxMs: 30_000 }, activity);
  assert.deepEqual([1, 2, 3].map(() => schedule.nextDelayMs(ADVICE)), [1000, 1000, 1000]);
  state.resting = true;
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(() => schedule.nextDelayMs(ADVICE)), [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  schedule.delivered();
  assert.deepEqual([1, 2].map(() => schedule.nextDelayMs(ADVICE)), [1000, 2000], 'messages flowing: short, then growing again');
  let woken = 0;
  schedule.onWake(() => woken++);
  wake();
  assert.equal(woken, 1);
  assert.equal(schedule.nextDelayMs(ADVICE), 1000);
});

test('the server\'s advice bounds the interval: never under its interval, always within 3/4 of its maxInterval after it', () => {
  const { activity, state } = page();
  state.resting = true;
  const schedule = new PollSchedule({ minMs: 100, maxMs: 30_000 }, activity);
  const delays = Array.from({ length: 12 }, () => schedule.nextDelayMs({ interval: 500, maxInterval: 10_000 }));
  assert.equal(Math.min(...delays), 500);
  assert.equal(Math.max(...delays), 8000);
  assert.equal(schedule.nextDelayMs({}), 7500, 'a server that names no maxInterval: CometD\'s 10 s assumed');
});

test('HoldCuts: three holds cut at about the same age are a verdict; random ages, or a hold that outlives them, are not', () => {
  const cuts = new HoldCuts();
  cuts.record(2010, true);
  cuts.record(2003, true);
  assert.equal(cuts.cutAfterMs, undefined, 'two are not yet a run');
  cuts.record(1998, true);
  assert.equal(cuts.cutAfterMs, 1998);
  cuts.record(900, false);
  assert.equal(cuts.cutAfterMs, 1998, 'a hold answered early (a message came) says nothing');
  cuts.record(30_000, false);
  assert.equal(cuts.cutAfterMs, undefined, 'a hold outlived the cuts');
  for (const age of [3000, 17_000, 8000]) cuts.record(age, true);
  assert.equal(cuts.cutAfterMs, undefined, 'a flaky network cuts at random ages');
});
