/**
 * Held requests time out through shared timers (core/deadlines.ts): one timer per timeout length,
 * however many requests are held, each resumed at its own deadline, cancelled holds never resumed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Clock, Timer } from '../../src/core/clock.js';
import type { ResumeReason } from '../../src/core/session.js';
import { SessionStore } from '../../src/core/session-store.js';

/** A clock the test moves by hand, which counts the timers asked of it. */
function manualClock() {
  let now = 0;
  let timers: { at: number; callback: () => void; cleared: boolean; interval?: number }[] = [];
  let set = 0;
  const clock: Clock = {
    now: () => now,
    setTimeout(callback, ms) {
      set++;
      const timer = { at: now + ms, callback, cleared: false, refresh() {} };
      timers.push(timer);
      return timer as Timer;
    },
    clearTimeout: (timer) => void ((timer as unknown as { cleared: boolean }).cleared = true),
    setInterval(callback, ms) {
      const timer = { at: now + ms, callback, cleared: false, interval: ms, refresh() {} };
      timers.push(timer);
      return timer as Timer;
    },
    clearInterval: (timer) => void ((timer as unknown as { cleared: boolean }).cleared = true),
  };
  return {
    clock,
    timeoutsSet: () => set,
    /** Moves the time to `to`, firing what is due in order. */
    advance(to: number) {
      for (;;) {
        const due = timers.filter((timer) => !timer.cleared && timer.at <= to).sort((a, b) => a.at - b.at)[0];
        if (due === undefined) break;
        now = due.at;
        if (due.interval !== undefined) due.at += due.interval;
        else timers = timers.filter((timer) => timer !== due);
        due.callback();
      }
      now = to;
    },
  };
}

describe('held request deadlines', () => {
  test('a thousand holds share one timer, each resumed at its own deadline; cancelled ones are not', () => {
    const manual = manualClock();
    const store = new SessionStore({ maxIntervalMs: 60_000, maxQueue: 10, clock: manual.clock, sweepIntervalMs: 1_000_000 });
    const resumed = new Map<number, { reason: ResumeReason; at: number }>();
    const waiters = [];
    for (let i = 0; i < 1000; i++) {
      manual.advance(i);
      const session = store.create(undefined);
      const waiter = { resume: (reason: ResumeReason) => resumed.set(i, { reason, at: manual.clock.now() }) };
      session.hold(waiter, 30_000);
      waiters.push({ session, waiter });
    }
    assert.ok(manual.timeoutsSet() <= 1, `${manual.timeoutsSet()} timers for 1000 holds`);
    for (let i = 0; i < 1000; i += 2) waiters[i]!.session.cancelHold(waiters[i]!.waiter);
    manual.advance(30_000 + 499);
    assert.equal(resumed.size, 250);
    for (const [i, { reason, at }] of resumed) {
      assert.equal(i % 2, 1, 'a cancelled hold was resumed');
      assert.equal(reason, 'timeout');
      assert.equal(at, 30_000 + i, 'resumed at its own deadline');
    }
    manual.advance(40_000);
    assert.equal(resumed.size, 500);
    // A second round after the queue emptied arms the timer again.
    const again = store.create(undefined);
    let reason: ResumeReason | undefined;
    again.hold({ resume: (why) => (reason = why) }, 30_000);
    manual.advance(70_000);
    assert.equal(reason, 'timeout');
    store.dispose();
  });

  test('another timeout length gets its own queue; a replaced hold is not resumed twice', () => {
    const manual = manualClock();
    const store = new SessionStore({ maxIntervalMs: 60_000, maxQueue: 10, clock: manual.clock, sweepIntervalMs: 1_000_000 });
    const reasons: string[] = [];
    const a = store.create(undefined);
    a.hold({ resume: (why) => reasons.push(`a1 ${why}`) }, 10_000);
    manual.advance(5_000);
    a.hold({ resume: (why) => reasons.push(`a2 ${why}`) }, 10_000);
    const b = store.create(undefined);
    b.hold({ resume: (why) => reasons.push(`b ${why}`) }, 1_000);
    manual.advance(6_000);
    assert.deepEqual(reasons, ['a1 replaced', 'b timeout']);
    manual.advance(14_999);
    assert.deepEqual(reasons, ['a1 replaced', 'b timeout']);
    manual.advance(15_000);
    assert.deepEqual(reasons, ['a1 replaced', 'b timeout', 'a2 timeout']);
    store.dispose();
  });
});
