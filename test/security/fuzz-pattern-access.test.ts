/**
 * Pattern subscriptions against random channel rules (issue 15 A.2, fast-check): random rule sets
 * (patterns with `*` and `**`; anyone, token, nobody, grant, claims), random bearers (grants,
 * claims, anonymous), random subscriptions (each maybe with a token of its own, as Bayeux allows)
 * and publishes on random channels. No subscriber may ever receive a message on a channel it could
 * not have subscribed to by name, and each must receive every one it could; a subscription is
 * refused exactly when no channel under its pattern is readable. The reference is a naive
 * per-channel reading of the rules (helpers/fuzz-access.ts).
 *
 * Two rigs: the core (access, hub, sessions, engine) in process, many runs; and a real Herald per
 * run, subscribers over REST SSE and Bayeux long-polling, fewer runs. The seed is fixed; replay
 * another with FUZZ_SEED=<n>, scale with FUZZ_RUNS (core runs; the server rig runs a tenth).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { ChannelAccess } from '../../src/core/access.js';
import type { ChannelRule, Principal } from '../../src/core/access.js';
import { Hub } from '../../src/core/hub.js';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import { SessionStore } from '../../src/core/session-store.js';
import { decideSubscription } from '../../src/core/subscription-guard.js';
import { channelArb, layeredRulesArb, matches, mayRead, patternArb, principalArb, ruledChannelArb, rulesArb, UNIVERSE, widePatternArb } from '../helpers/fuzz-access.js';
import { startHerald } from '../helpers/herald.js';
import { startHookBackend } from '../helpers/hook-backend.js';
import { openStream } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.FUZZ_SEED ?? 1502);
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const SECRET = 'a-test-secret-of-at-least-32-characters!';
const noTokens = async () => ({ ok: false as const, reason: 'invalid' as const, message: 'no' });

interface Subscription {
  readonly pattern: string;
  /** A token given with this subscription only. */
  readonly extra: Principal | undefined;
}

interface Subscriber {
  readonly principal: Principal | undefined;
  readonly subscriptions: readonly Subscription[];
}

const subscriberArb = (pattern: fc.Arbitrary<string>) =>
  fc.record({
    principal: principalArb,
    subscriptions: fc.uniqueArray(fc.record({ pattern, extra: principalArb }), { minLength: 1, maxLength: 3, selector: (s) => s.pattern }),
  });

/** Anything at all: any rules in any order, any patterns, any channels. */
const scenarioArb = fc.record({
  rules: rulesArb,
  subscribers: fc.array(subscriberArb(patternArb), { minLength: 1, maxLength: 3 }),
  publishes: fc.array(channelArb, { minLength: 1, maxLength: 8 }),
});

/** The shape of the bypass, so that few runs find it: narrow rules under wide ones, wide subscriptions, channels where the rules are. */
const layeredArb = fc.record({
  rules: layeredRulesArb,
  subscribers: fc.array(subscriberArb(widePatternArb), { minLength: 2, maxLength: 3 }),
  publishes: fc.array(fc.oneof({ arbitrary: ruledChannelArb, weight: 4 }, { arbitrary: channelArb, weight: 1 }), { minLength: 4, maxLength: 10 }),
});

/** Whether a subscription may be made: some channel under it is readable by its bearers. */
function acceptable(rules: readonly ChannelRule[], verifiesTokens: boolean, principal: Principal | undefined, sub: Subscription): boolean {
  return UNIVERSE.some((c) => matches(sub.pattern, c) && (mayRead(rules, verifiesTokens, principal, c) || mayRead(rules, verifiesTokens, sub.extra, c)));
}

/** Whether a message on `channel` may reach the subscriber through one of its accepted subscriptions. */
function deliverable(rules: readonly ChannelRule[], verifiesTokens: boolean, principal: Principal | undefined, accepted: readonly Subscription[], channel: string): boolean {
  return accepted.some((s) => matches(s.pattern, channel) && (mayRead(rules, verifiesTokens, principal, channel) || mayRead(rules, verifiesTokens, s.extra, channel)));
}

describe('pattern subscriptions never reach past the rules', () => {
  test('core: access, hub and sessions', async (t) => {
    // Coverage: guarded subscriptions made, and deliveries a pattern matched but the rules withheld.
    let guarded = 0;
    let withheld = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(scenarioArb, layeredArb), fc.boolean(), async ({ rules, subscribers, publishes }, verifiesTokens) => {
        const access = new ChannelAccess(noTokens, verifiesTokens, { channels: rules });
        const engine = new MemoryEngine();
        const sessions = new SessionStore({ maxIntervalMs: 60_000, maxQueue: 1000 });
        const hub = new Hub(engine, sessions);
        try {
          const rig: { session: ReturnType<SessionStore['create']>; principal: Principal | undefined; accepted: Subscription[] }[] = [];
          for (const subscriber of subscribers) {
            const session = sessions.create();
            session.principal = subscriber.principal;
            const accepted: Subscription[] = [];
            for (const sub of subscriber.subscriptions) {
              const decision = decideSubscription(access, subscriber.principal, sub.extra, sub.pattern);
              assert.equal(decision.ok, acceptable(rules, verifiesTokens, subscriber.principal, sub), `subscribe ${sub.pattern}`);
              if (!decision.ok) continue;
              await hub.subscribe(session, sub.pattern, decision.guard);
              if (decision.guard !== undefined) guarded++;
              accepted.push(sub);
            }
            rig.push({ session, principal: subscriber.principal, accepted });
          }
          for (const [i, channel] of publishes.entries()) {
            const expected = rig.filter((r) => deliverable(rules, verifiesTokens, r.principal, r.accepted, channel)).length;
            const message = await engine.publish({ channel, data: i });
            assert.equal(hub.takeRecipientCount(message.id), expected, `recipients counted on ${channel}`);
          }
          for (const { session, principal, accepted } of rig) {
            const received = session.drain().map((d) => d.message.data);
            const expected = publishes.flatMap((channel, i) => (deliverable(rules, verifiesTokens, principal, accepted, channel) ? [i] : []));
            assert.deepEqual(received, expected, `${accepted.map((s) => s.pattern).join(' ')} received`);
            withheld += publishes.filter((channel) => accepted.some((s) => matches(s.pattern, channel))).length - expected.length;
          }
        } finally {
          sessions.dispose();
          await engine.close();
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    t.diagnostic(`seed ${SEED}: ${guarded} guarded subscriptions, ${withheld} deliveries withheld`);
    assert.ok(guarded > 0 && withheld > 0, 'the runs exercised guarded subscriptions');
  });

  test('a real Herald: REST SSE and Bayeux long-polling subscribers', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof({ arbitrary: layeredArb, weight: 3 }, { arbitrary: scenarioArb, weight: 1 }), fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }), async ({ rules, subscribers, publishes }, overSse) => {
        const cleanups: (() => unknown)[] = [];
        const scope = { after: (fn: () => unknown) => void cleanups.push(fn) };
        try {
          await runOnServer(scope, rules, subscribers, overSse, publishes);
        } finally {
          for (const cleanup of cleanups.reverse()) await cleanup();
        }
      }),
      { seed: SEED, numRuns: Math.max(1, Math.round(RUNS / 10)) },
    );
  });
});

async function tokenFor(principal: Principal | undefined): Promise<string | undefined> {
  if (principal === undefined) return undefined;
  return new SignJWT({ ...principal.claims, subscribe: principal.grants.subscribe }).setProtectedHeader({ alg: 'HS256' }).setSubject('fuzz').setExpirationTime('1h').sign(Buffer.from(SECRET));
}

/** What one subscriber got, and the marker it waits for: once that arrives, every earlier message has. */
interface Listener {
  readonly principal: Principal | undefined;
  readonly accepted: readonly Subscription[];
  received(): Promise<{ channel: string; data: unknown }[]>;
  marker?: string;
}

async function runOnServer(scope: { after(fn: () => unknown): void }, rules: ChannelRule[], subscribers: Subscriber[], overSse: boolean[], publishes: string[]): Promise<void> {
  // A backend that refuses everything: a "hook" rule then admits exactly what the naive reading does.
  const backend = rules.some((rule) => rule.subscribe === 'hook') ? await startHookBackend(scope, () => ({ json: { allow: false, reason: 'no' } })) : undefined;
  const subscribeHook = backend === undefined ? {} : { subscribeHook: `${backend.url}/subscribe` };
  const { port, herald } = await startHerald(scope, { jwtSecret: SECRET, permissions: { channels: rules }, timeoutMs: 2000, ...subscribeHook });
  const listeners: Listener[] = [];
  for (const [k, subscriber] of subscribers.entries()) {
    const token = await tokenFor(subscriber.principal);
    if (overSse[k] === true) {
      // An SSE stream is one subscription: the first pattern, with the subscriber's own token.
      const sub = { pattern: subscriber.subscriptions[0]!.pattern, extra: undefined };
      const stream = await openStream(port, `/sub${sub.pattern}${token === undefined ? '' : `?token=${token}`}`, { Accept: 'text/event-stream' }, scope);
      assert.equal(stream.res.statusCode === 200, acceptable(rules, true, subscriber.principal, sub), `SSE ${sub.pattern}: ${stream.res.statusCode}`);
      if (stream.res.statusCode !== 200) continue;
      const received = async () =>
        stream
          .text()
          .split('\n')
          .filter((line) => line.startsWith('data: {"id"'))
          .map((line) => JSON.parse(line.slice(6)));
      listeners.push({ principal: subscriber.principal, accepted: [sub], received });
      continue;
    }
    const client = new RawBayeux(port);
    const hello = await client.handshake(token === undefined ? {} : { ext: { auth: { token } } });
    assert.equal(hello.successful, true, JSON.stringify(hello));
    await client.connect({ advice: { timeout: 0 } });
    const accepted: Subscription[] = [];
    for (const sub of subscriber.subscriptions) {
      const extra = await tokenFor(sub.extra);
      const res = await client.send([{ channel: '/meta/subscribe', clientId: client.clientId, subscription: sub.pattern, id: client.nextId(), ...(extra === undefined ? {} : { ext: { auth: { token: extra } } }) }]);
      const reply = res.json()[0];
      assert.equal(reply.successful, acceptable(rules, true, subscriber.principal, sub), `Bayeux ${sub.pattern}: ${JSON.stringify(reply)}`);
      if (reply.successful) accepted.push(sub);
    }
    if (accepted.length === 0) continue;
    const got: { channel: string; data: unknown }[] = [];
    const listener: Listener = {
      principal: subscriber.principal,
      accepted,
      received: async () => {
        if (!got.some((m) => m.data === listener.marker)) got.push(...(await client.connect()).json().filter((m: any) => m.data !== undefined));
        return got;
      },
    };
    listeners.push(listener);
  }

  for (const [i, channel] of publishes.entries()) await herald.publish(channel, i);
  // Then one marker per listener, on a channel it may read: messages reach a session in order.
  for (const [k, listener] of listeners.entries()) {
    const witness = UNIVERSE.find((c) => deliverable(rules, true, listener.principal, listener.accepted, c));
    assert.ok(witness !== undefined, 'an accepted subscription has a readable channel');
    listener.marker = `marker-${k}`;
    await herald.publish(witness, listener.marker);
  }
  for (const listener of listeners) {
    const got = await waitFor(`marker ${listener.marker}`, async () => {
      const received = await listener.received();
      return received.some((m) => m.data === listener.marker) && received;
    });
    for (const m of got) assert.ok(deliverable(rules, true, listener.principal, listener.accepted, m.channel), `${m.channel} reached ${listener.accepted.map((s) => s.pattern).join(' ')}`);
    const expected = publishes.flatMap((channel, i) => (deliverable(rules, true, listener.principal, listener.accepted, channel) ? [i] : []));
    assert.deepEqual(
      got.filter((m) => typeof m.data === 'number').map((m) => m.data),
      expected,
      `${listener.accepted.map((s) => s.pattern).join(' ')} received`,
    );
  }
}
