/**
 * Patterns judged channel by channel (issue 15 A.2): channel sets (covers, overlap), how far a
 * bearer reaches into a pattern, and the guard a partly readable subscription gets — each checked
 * against a naive reading of the rules over every channel of a small universe (helpers/fuzz-access.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ChannelAccess } from '../../src/core/access.js';
import type { ChannelRule, Principal } from '../../src/core/access.js';
import { channelSet, includes, intersection } from '../../src/core/channel-set.js';
import type { ChannelSet } from '../../src/core/channel-set.js';
import { decideSubscription } from '../../src/core/subscription-guard.js';
import { channelArb, matches, mayRead, patternArb, principalArb, ruleFor, rulesArb, UNIVERSE } from '../helpers/fuzz-access.js';

const SEED = Number(process.env.FUZZ_SEED ?? 15_2);
const noTokens = async () => ({ ok: false as const, reason: 'invalid' as const, message: 'no' });

function principal(grants: string[], claims: Record<string, unknown> = {}): Principal {
  return { subject: 'u1', expiresAt: undefined, claims, grants: { subscribe: grants, publish: [] } };
}

/** Whether a concrete channel is in a set (the sets intersection builds are not all patterns). */
function member(set: ChannelSet, channel: string): boolean {
  const segments = channel.slice(1).split('/');
  return segments.length >= set.minDepth && segments.length <= set.maxDepth && set.prefix.every((s, i) => segments[i] === s);
}

describe('channel sets', () => {
  test('intersection: what two patterns have in common', () => {
    const cases: [string, string, string | undefined][] = [
      ['/chat/**', '/chat/private/**', '/chat/private/**'],
      ['/a/**', '/*', undefined],
      ['/a/*', '/a/b', '/a/b'],
      ['/a/*', '/a/**', '/a/*'],
      ['/a/**', '/b/**', undefined],
      ['/**', '/a/b/*', '/a/b/*'],
      ['/a/b', '/a/c', undefined],
      ['/a', '/a/**', undefined],
    ];
    for (const [a, b, expected] of cases) {
      const shared = intersection(channelSet(a)!, channelSet(b)!);
      assert.deepEqual(shared, expected === undefined ? undefined : channelSet(expected), `${a} ∩ ${b}`);
    }
  });

  test('includes and intersection agree with matching every channel of the universe', () => {
    fc.assert(
      fc.property(patternArb, patternArb, (a, b) => {
        const [setA, setB] = [channelSet(a)!, channelSet(b)!];
        const inA = UNIVERSE.filter((c) => matches(a, c));
        const inB = new Set(UNIVERSE.filter((c) => matches(b, c)));
        assert.equal(includes(setA, setB), [...inB].every((c) => inA.includes(c)), `${a} ⊇ ${b}`);
        const shared = intersection(setA, setB);
        const both = inA.filter((c) => inB.has(c));
        assert.deepEqual(UNIVERSE.filter((c) => shared !== undefined && member(shared, c)), both, `${a} ∩ ${b}`);
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });
});

describe('ChannelAccess.reach on patterns', () => {
  test('the issue: a wider wildcard reaches only part of what a narrower rule closes', () => {
    const chat = new ChannelAccess(noTokens, false, {
      channels: [
        { pattern: '/chat/private/**', subscribe: 'nobody' },
        { pattern: '/chat/**', subscribe: 'anyone' },
      ],
    });
    assert.equal(chat.reach(undefined, 'subscribe', '/chat/**'), 'some');
    assert.equal(chat.allows(undefined, 'subscribe', '/chat/**'), false, 'allows a pattern = every channel of it');
    assert.equal(chat.reach(undefined, 'subscribe', '/chat/public/**'), 'all');
    assert.equal(chat.reach(undefined, 'subscribe', '/chat/private/*'), 'none');
    assert.equal(chat.reach(undefined, 'subscribe', '/chat/private/ceo'), 'none');
    assert.equal(chat.reach(undefined, 'subscribe', '/**'), 'some', 'open by default outside the rules');

    const ops = new ChannelAccess(noTokens, true, {
      channels: [
        { pattern: '/ops/**', subscribe: { claim: 'role', equals: 'admin' } },
        { pattern: '/**', subscribe: 'token' },
      ],
    });
    assert.equal(ops.reach(principal([], { role: 'user' }), 'subscribe', '/**'), 'some');
    assert.equal(ops.reach(principal([], { role: 'admin' }), 'subscribe', '/**'), 'all');
    assert.equal(ops.reach(principal(['/ops/log']), 'subscribe', '/ops/*'), 'some', 'a grant opens its own channel');
    assert.equal(ops.reach(principal(['/ops/**']), 'subscribe', '/ops/*'), 'all');
    assert.equal(ops.reach(undefined, 'subscribe', '/**'), 'none');

    const shadowed = new ChannelAccess(noTokens, false, {
      channels: [
        { pattern: '/a/**', subscribe: 'nobody' },
        { pattern: '/a/b', subscribe: 'anyone' },
      ],
    });
    assert.equal(shadowed.reach(undefined, 'subscribe', '/a/*'), 'none', 'a rule an earlier one covers decides nothing');
    const shadowedInside = new ChannelAccess(noTokens, true, {
      channels: [
        { pattern: '/a/*', subscribe: 'nobody' },
        { pattern: '/a/b', subscribe: 'anyone' },
      ],
    });
    assert.equal(shadowedInside.reach(undefined, 'subscribe', '/**'), 'none', 'nor inside a pattern wider than both');
    assert.equal(shadowedInside.reach(undefined, 'subscribe', '/a/b/**'), 'none');
  });

  test('matches the naive per-channel reading: "all" never over-reaches, "none" only when nothing under the pattern is readable', () => {
    fc.assert(
      fc.property(rulesArb, fc.boolean(), principalArb, patternArb, channelArb, (rules, verifiesTokens, bearer, pattern, channel) => {
        const access = new ChannelAccess(noTokens, verifiesTokens, { channels: rules });
        assert.equal(access.allows(bearer, 'subscribe', channel), mayRead(rules, verifiesTokens, bearer, channel), `${channel} by name`);
        const readable = UNIVERSE.filter((c) => matches(pattern, c)).map((c) => mayRead(rules, verifiesTokens, bearer, c));
        const reach = access.reach(bearer, 'subscribe', pattern);
        if (reach === 'all') assert.ok(readable.every(Boolean), `${pattern}: all, yet some channel is closed`);
        assert.equal(reach === 'none', !readable.some(Boolean), `${pattern}: ${reach}`);
      }),
      { seed: SEED, numRuns: 1500 },
    );
  });
});

describe('ChannelAccess.hooked', () => {
  test('says the backend decides only where every channel of the pattern falls to a "hook" rule', () => {
    const access = new ChannelAccess(noTokens, false, {
      channels: [
        { pattern: '/orders/secret/**', subscribe: 'nobody' },
        { pattern: '/orders/**', subscribe: 'hook', publish: 'anyone' },
      ],
    });
    assert.equal(access.hooked('subscribe', '/orders/1'), true);
    assert.equal(access.hooked('subscribe', '/orders/open/**'), true);
    assert.equal(access.hooked('subscribe', '/orders/**'), false, 'part of it is closed outright');
    assert.equal(access.hooked('subscribe', '/orders/secret/x'), false);
    assert.equal(access.hooked('subscribe', '/**'), false, 'part of it falls to the default');
    assert.equal(access.hooked('publish', '/orders/1'), false, 'each action has its own rules');
    assert.equal(access.reach(undefined, 'subscribe', '/orders/1'), 'none', 'the rules alone never admit by hook');
  });

  test('never hands the backend a channel some other rule (or the default) decides', () => {
    fc.assert(
      fc.property(rulesArb, patternArb, (rules, pattern) => {
        const access = new ChannelAccess(noTokens, false, { channels: rules });
        if (!access.hooked('subscribe', pattern)) return;
        for (const channel of UNIVERSE.filter((c) => matches(pattern, c))) assert.equal(ruleFor(rules, channel), 'hook', `${pattern}: ${channel}`);
      }),
      { seed: SEED, numRuns: 1500 },
    );
  });
});

describe('decideSubscription', () => {
  test('no guard when every channel is readable, by the session or by the token given with the subscription', () => {
    const rules: ChannelRule[] = [
      { pattern: '/chat/private/**', subscribe: 'nobody' },
      { pattern: '/chat/**', subscribe: 'anyone' },
    ];
    const access = new ChannelAccess(noTokens, true, { channels: rules });
    assert.deepEqual(decideSubscription(access, undefined, undefined, '/chat/room'), { ok: true, guard: undefined });
    assert.deepEqual(decideSubscription(access, undefined, undefined, '/chat/private/x'), { ok: false });
    assert.deepEqual(decideSubscription(access, undefined, principal(['/chat/private/x']), '/chat/private/x'), { ok: true, guard: undefined });
    assert.deepEqual(decideSubscription(access, undefined, principal(['/chat/**']), '/chat/**'), { ok: true, guard: undefined });

    const partial = decideSubscription(access, undefined, principal(['/chat/private/ceo']), '/chat/**');
    assert.ok(partial.ok && partial.guard !== undefined);
    const verdicts = new Map();
    assert.equal(partial.guard.admits(undefined, '/chat/room', verdicts), true);
    assert.equal(partial.guard.admits(undefined, '/chat/private/ceo', new Map()), true, 'the extra token opens its channel');
    assert.equal(partial.guard.admits(undefined, '/chat/private/cfo', new Map()), false);
    assert.equal(verdicts.size, 1, 'one verdict per bearer and fan-out');
  });
});
