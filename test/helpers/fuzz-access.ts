/**
 * Channel rules, bearers and patterns for the access property tests (test/core/access-*.test.ts,
 * test/security/fuzz-pattern-access.test.ts), and the reference they are judged by: a naive
 * reading of the rules for ONE concrete channel — the bearer's grants first, then the first rule
 * that names the action and matches the channel, else the default. What a subscriber may receive
 * through a pattern is exactly what this reference allows channel by channel.
 *
 * Rules, grants and patterns use the segments `a` and `b`; the channel universe adds `z`, a name
 * none of them mentions, and one more level of depth, so every set the rules can tell apart has a
 * member in it.
 */
import fc from 'fast-check';
import type { Audience, ChannelRule, Principal } from '../../src/core/access.js';
import { expandChannel } from '../../src/core/channel.js';

const segment = fc.constantFrom('a', 'b');

/** A channel or pattern over `a` and `b`, up to three literal segments: `/a`, `/b/*`, `/**`, `/a/b/a/**`. */
export const patternArb: fc.Arbitrary<string> = fc.tuple(fc.array(segment, { minLength: 0, maxLength: 3 }), fc.constantFrom('', '*', '**')).map(([segments, tail]) => {
  const parts = tail === '' ? segments : [...segments, tail];
  return parts.length === 0 ? '/a' : '/' + parts.join('/');
});

/** A concrete channel, `z` standing for any name the rules do not mention. */
export const channelArb: fc.Arbitrary<string> = fc.array(fc.constantFrom('a', 'b', 'z'), { minLength: 1, maxLength: 4 }).map((s) => '/' + s.join('/'));

export const audienceArb: fc.Arbitrary<Audience> = fc.constantFrom<Audience>(
  'anyone',
  'token',
  'nobody',
  'grant',
  'hook',
  { claim: 'role', equals: 'admin' },
  { claim: 'teams', equals: ['red', 'blue'] },
  { claim: 'vip' },
);

/** Up to five rules; some speak only to publishing, so a subscription falls through them. */
export const rulesArb: fc.Arbitrary<ChannelRule[]> = fc.array(
  fc.record({ pattern: patternArb, subscribe: fc.option(audienceArb, { nil: undefined }) }).map(({ pattern, subscribe }): ChannelRule =>
    subscribe === undefined ? { pattern, publish: 'anyone' } : { pattern, subscribe },
  ),
  { maxLength: 5 },
);

/** How specific a pattern is: more literal segments first, then a name before `*` before `**`. */
function specificity(pattern: string): number {
  const segments = pattern.slice(1).split('/');
  const last = segments[segments.length - 1];
  const literals = segments.filter((s) => s !== '*' && s !== '**').length;
  return literals * 3 + (last === '**' ? 0 : last === '*' ? 1 : 2);
}

/**
 * Rules as operators lay them out, where a wider pattern used to slip past narrower rules: a few
 * narrow rules of any audience, under one or two wide open ones, most specific first.
 */
export const layeredRulesArb: fc.Arbitrary<ChannelRule[]> = fc
  .tuple(
    fc.array(
      fc.record({
        pattern: fc.tuple(fc.array(segment, { minLength: 1, maxLength: 2 }), fc.constantFrom('', '*', '**')).map(([s, tail]) => '/' + (tail === '' ? s : [...s, tail]).join('/')),
        subscribe: audienceArb,
      }),
      { minLength: 1, maxLength: 3 },
    ),
    fc.array(fc.record({ pattern: fc.constantFrom('/**', '/a/**', '/b/**'), subscribe: fc.constantFrom<Audience>('anyone', 'token', { claim: 'vip' }) }), { minLength: 1, maxLength: 2 }),
  )
  .map(([narrow, open]) => [...narrow, ...open].sort((x, y) => specificity(y.pattern) - specificity(x.pattern)));

/** Mostly wide subscriptions: the ones rules inside them must still bind. */
export const widePatternArb: fc.Arbitrary<string> = fc.oneof({ arbitrary: fc.constantFrom('/**', '/a/**', '/b/**', '/*', '/a/*'), weight: 2 }, { arbitrary: patternArb, weight: 1 });

/** A channel over `a` and `b` only: where the rules are. */
export const ruledChannelArb: fc.Arbitrary<string> = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => '/' + s.join('/'));

/** A verified token (grants and claims), or undefined: anonymous. */
export const principalArb: fc.Arbitrary<Principal | undefined> = fc.option(
  fc
    .record({
      grants: fc.array(patternArb, { maxLength: 2 }),
      role: fc.constantFrom(undefined, 'admin', 'user'),
      teams: fc.constantFrom(undefined, ['red'], ['green'], 'blue'),
      vip: fc.constantFrom(undefined, true),
    })
    .map(({ grants, role, teams, vip }): Principal => {
      const claims: Record<string, unknown> = {};
      if (role !== undefined) claims.role = role;
      if (teams !== undefined) claims.teams = teams;
      if (vip !== undefined) claims.vip = vip;
      return { subject: 'fuzz', expiresAt: undefined, claims, grants: { subscribe: grants, publish: [] } };
    }),
  { nil: undefined, freq: 3 },
);

/** Whether the concrete `channel` is one of those `pattern` matches. */
export function matches(pattern: string, channel: string): boolean {
  return expandChannel(channel).includes(pattern);
}

/** Whether `principal` may subscribe to the concrete `channel` by name, read naively from the rules. */
export function mayRead(rules: readonly ChannelRule[], verifiesTokens: boolean, principal: Principal | undefined, channel: string): boolean {
  if (principal !== undefined && principal.grants.subscribe.some((grant) => matches(grant, channel))) return true;
  const audience = rules.find((rule) => rule.subscribe !== undefined && matches(rule.pattern, channel))?.subscribe ?? (verifiesTokens ? 'grant' : 'anyone');
  if (audience === 'anyone') return true;
  // The rules alone never admit by `hook`: the backend is asked where they leave it (core/hooks.ts).
  if (principal === undefined || audience === 'nobody' || audience === 'grant' || audience === 'hook') return false;
  if (audience === 'token') return true;
  const value = principal.claims[audience.claim];
  if (value === undefined) return false;
  if (!('equals' in audience)) return true;
  const options = Array.isArray(audience.equals) ? audience.equals : [audience.equals];
  return (Array.isArray(value) ? value : [value]).some((v) => options.includes(v));
}

/** Every channel of up to five segments over `a`, `b` and `z`. */
export const UNIVERSE: readonly string[] = (() => {
  const out: string[] = [];
  let level = [''];
  for (let depth = 1; depth <= 5; depth++) {
    level = level.flatMap((prefix) => ['a', 'b', 'z'].map((s) => `${prefix}/${s}`));
    out.push(...level);
  }
  return out;
})();

/** The audience the first rule speaking to subscriptions gives the concrete `channel`, naively (undefined: the default). */
export function ruleFor(rules: readonly ChannelRule[], channel: string): Audience | undefined {
  return rules.find((rule) => rule.subscribe !== undefined && matches(rule.pattern, channel))?.subscribe;
}
