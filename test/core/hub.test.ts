/**
 * The hub between engine and sessions: gaps the engine reports reach every session they concern
 * (and no session a subscription guard keeps from the channel),
 * in the form its transport can carry; and a subscription is live before its subscribe settles,
 * for the second local subscriber of a pattern too.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ChannelAccess } from '../../src/core/access.js';
import type { GapListener } from '../../src/core/engine.js';
import { Hub } from '../../src/core/hub.js';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import type { Delivery } from '../../src/core/message.js';
import type { ResumeReason, Stream } from '../../src/core/session.js';
import { SessionStore } from '../../src/core/session-store.js';
import { decideSubscription } from '../../src/core/subscription-guard.js';
import { deferred } from '../helpers/wait.js';

/** A memory engine that can report gaps and hold its subscriptions back, as a networked one may. */
class ControlledEngine extends MemoryEngine {
  reportGap: GapListener = () => {};
  subscribeGate: Promise<void> | undefined;

  override onGap(listener: GapListener): void {
    this.reportGap = listener;
  }

  override async subscribe(pattern: string): Promise<void> {
    await this.subscribeGate;
    return super.subscribe(pattern);
  }
}

function setup(t: { after(fn: () => unknown): void }) {
  const engine = new ControlledEngine();
  const sessions = new SessionStore({ maxIntervalMs: 10_000, maxQueue: 100, sweepIntervalMs: 1000 });
  const hub = new Hub(engine, sessions);
  t.after(() => {
    sessions.dispose();
    return engine.close();
  });
  return { engine, sessions, hub };
}

/** A stream that records what it was told, gaps and messages in one order. */
function recordingStream(withGaps: boolean): Stream & { told: string[] } {
  const told: string[] = [];
  const stream: Stream & { told: string[] } = {
    told,
    push: (deliveries: Delivery[]) => {
      for (const delivery of deliveries) told.push(`message ${delivery.message.data}`);
      return true;
    },
    sessionClosed: () => {},
  };
  if (withGaps) stream.gap = (channel) => told.push(`gap ${channel}`);
  return stream;
}

describe('Hub', () => {
  test('a gap on a channel reaches every session matching it; a gap on a pattern, that pattern\'s sessions only', async (t) => {
    const { engine, sessions, hub } = setup(t);
    const exact = sessions.create();
    const wildcard = sessions.create();
    const deep = sessions.create();
    const other = sessions.create();
    await hub.subscribe(exact, '/a/b');
    await hub.subscribe(wildcard, '/a/*');
    await hub.subscribe(deep, '/a/**');
    await hub.subscribe(other, '/z');
    engine.reportGap('/a/b');
    assert.deepEqual([exact, wildcard, deep, other].map((s) => s.takeGaps()), [['/a/b'], ['/a/b'], ['/a/b'], []]);
    engine.reportGap('/a/*');
    assert.deepEqual([exact, wildcard, deep, other].map((s) => s.takeGaps()), [[], ['/a/*'], [], []]);
  });

  test('a gap on a channel a guard keeps from the session is not told to it: the name itself is withheld', async (t) => {
    const { engine, sessions, hub } = setup(t);
    const access = new ChannelAccess(async () => ({ ok: false, reason: 'invalid', message: 'no' }), false, {
      channels: [
        { pattern: '/chat/private/**', subscribe: 'nobody' },
        { pattern: '/chat/**', subscribe: 'anyone' },
      ],
    });
    const decision = decideSubscription(access, undefined, undefined, '/chat/**');
    assert.ok(decision.ok && decision.guard !== undefined);
    const guarded = sessions.create();
    await hub.subscribe(guarded, '/chat/**', decision.guard);
    engine.reportGap('/chat/private/ceo');
    engine.reportGap('/chat/room');
    assert.deepEqual(guarded.takeGaps(), ['/chat/room']);
  });

  test('a stream that can tell of gaps is told before the messages that follow; one that cannot leaves it to the held connect', async (t) => {
    const { engine, sessions, hub } = setup(t);
    const streamed = sessions.create();
    const stream = recordingStream(true);
    streamed.attachStream(stream);
    const bayeuxLike = sessions.create();
    bayeuxLike.attachStream(recordingStream(false));
    const polled = sessions.create();
    for (const session of [streamed, bayeuxLike, polled]) await hub.subscribe(session, '/c');
    const reasons: ResumeReason[] = [];
    bayeuxLike.hold({ resume: (reason) => void reasons.push(reason) }, 60_000);
    const pollReasons: ResumeReason[] = [];
    polled.hold({ resume: (reason) => void pollReasons.push(reason) }, 60_000);

    engine.reportGap('/c');
    await engine.publish({ channel: '/c', data: 1 });
    await nextTurn();
    assert.deepEqual(stream.told, ['gap /c', 'message 1']);
    assert.equal(streamed.takeGaps().length, 0, 'told once');
    assert.deepEqual(reasons, ['messages'], 'the held connect is answered at once, to carry the gap');
    assert.deepEqual(bayeuxLike.takeGaps(), ['/c']);
    assert.deepEqual(pollReasons, ['messages']);
    assert.deepEqual(polled.takeGaps(), ['/c']);

    // A gap alone, with nothing queued, is still flushed.
    engine.reportGap('/c');
    await nextTurn();
    assert.deepEqual(stream.told, ['gap /c', 'message 1', 'gap /c']);
  });

  test('the second local subscriber of a pattern is not answered before the engine subscription is live', async (t) => {
    const { engine, sessions, hub } = setup(t);
    const gate = deferred();
    engine.subscribeGate = gate.promise;
    const settled: string[] = [];
    const first = hub.subscribe(sessions.create(), '/s').then(() => settled.push('first'));
    const second = hub.subscribe(sessions.create(), '/s').then(() => settled.push('second'));
    await nextTurn();
    assert.deepEqual(settled, [], 'neither is live yet');
    gate.resolve();
    await Promise.all([first, second]);
    assert.deepEqual(settled.sort(), ['first', 'second']);
  });
});
