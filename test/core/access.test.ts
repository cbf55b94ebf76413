import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ChannelAccess, covers, validatePermissions } from '../../src/core/access.js';
import type { Principal } from '../../src/core/access.js';
import { expandChannel } from '../../src/core/channel.js';

const noTokens = async () => ({ ok: false as const, reason: 'invalid' as const, message: 'no' });

function principal(grants: { subscribe?: string[]; publish?: string[] }, claims: Record<string, unknown> = {}): Principal {
  return { subject: 'u1', expiresAt: undefined, claims, grants: { subscribe: grants.subscribe ?? [], publish: grants.publish ?? [] } };
}

describe('covers(grant, channel)', () => {
  test('matches channel sets, not strings', () => {
    const cases: [string, string, boolean][] = [
      ['/a/**', '/a/b', true],
      ['/a/**', '/a/b/c', true],
      ['/a/**', '/a/*', true],
      ['/a/**', '/a/**', true],
      ['/a/**', '/a/b/**', true],
      ['/a/**', '/a', false],
      ['/a/**', '/b', false],
      ['/a/**', '/**', false],
      ['/a/**', '/ab/c', false],
      ['/a/*', '/a/b', true],
      ['/a/*', '/a/*', true],
      ['/a/*', '/a/**', false],
      ['/a/*', '/a/b/c', false],
      ['/a/b', '/a/b', true],
      ['/a/b', '/a/*', false],
      ['/a/b', '/a/bc', false],
      ['/**', '/**', true],
      ['/**', '/x/y/z', true],
      ['/*', '/x', true],
      ['/*', '/x/y', false],
      ['/a/*/c', '/a/b/c', false], // `*` is only a wildcard as the last segment
      ['not a channel', '/a', false],
    ];
    for (const [grant, channel, expected] of cases) assert.equal(covers(grant, channel), expected, `${grant} covers ${channel}`);
  });

  test('a grant covering a pattern covers every channel that pattern would deliver', () => {
    const segment = fc.constantFrom('a', 'b', 'c');
    const name = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => '/' + s.join('/'));
    const pattern = fc.tuple(fc.array(segment, { minLength: 0, maxLength: 3 }), fc.constantFrom('', '*', '**')).map(([s, tail]) => {
      const parts = tail === '' ? s : [...s, tail];
      return parts.length === 0 ? '/a' : '/' + parts.join('/');
    });
    fc.assert(
      fc.property(pattern, pattern, name, (grant, subscription, channel) => {
        // The channels `subscription` delivers are those whose expansion names it.
        if (covers(grant, subscription) && expandChannel(channel).includes(subscription)) {
          assert.ok(expandChannel(channel).includes(grant) || grant === channel, `${grant} ⊇ ${subscription} ∋ ${channel}`);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('ChannelAccess', () => {
  test('without token keys, everything is open and tokens only add', () => {
    const access = new ChannelAccess(noTokens, false);
    assert.ok(access.allows(undefined, 'subscribe', '/x'));
    assert.ok(access.allows(undefined, 'publish', '/x'));
  });

  test('with token keys, a token reaches only what it grants: /a/** does not reach /b', () => {
    const access = new ChannelAccess(noTokens, true);
    const bearer = principal({ subscribe: ['/a/**'], publish: ['/a/chat'] });
    assert.ok(access.allows(bearer, 'subscribe', '/a/x'));
    assert.ok(access.allows(bearer, 'subscribe', '/a/**'));
    assert.ok(!access.allows(bearer, 'subscribe', '/b'));
    assert.ok(!access.allows(bearer, 'subscribe', '/**'));
    assert.ok(access.allows(bearer, 'publish', '/a/chat'));
    assert.ok(!access.allows(bearer, 'publish', '/a/other'));
    assert.ok(!access.allows(undefined, 'subscribe', '/a/x'), 'anonymous');
    assert.ok(access.allows(undefined, 'publish', '/service/echo'), 'services stay open: their handlers see the subject');
  });

  test('rules: first rule that speaks to the action decides; claims; clientPublish', () => {
    const access = new ChannelAccess(noTokens, true, {
      clientPublish: true,
      channels: [
        { pattern: '/public/**', subscribe: 'anyone', publish: 'token' },
        { pattern: '/admin/**', subscribe: { claim: 'role', equals: 'admin' }, publish: 'nobody' },
        { pattern: '/team/**', subscribe: { claim: 'teams', equals: ['red', 'blue'] } },
        { pattern: '/service/admin/**', publish: { claim: 'role', equals: 'admin' } },
      ],
    });
    const user = principal({}, { role: 'user', teams: ['green', 'red'] });
    const admin = principal({ publish: ['/admin/**'] }, { role: 'admin' });
    assert.ok(access.allows(undefined, 'subscribe', '/public/news'));
    assert.ok(!access.allows(undefined, 'publish', '/public/news'));
    assert.ok(access.allows(user, 'publish', '/public/news'));
    assert.ok(!access.allows(undefined, 'subscribe', '/public'), '/public/** does not cover /public itself');
    assert.ok(!access.allows(user, 'subscribe', '/admin/log'));
    assert.ok(access.allows(admin, 'subscribe', '/admin/log'));
    assert.ok(access.allows(admin, 'publish', '/admin/log'), "the token's own grant wins over the rule");
    assert.ok(access.allows(user, 'subscribe', '/team/x'), 'an array claim holding one of the values');
    assert.ok(!access.allows(principal({}, { teams: ['green'] }), 'subscribe', '/team/x'));
    assert.ok(!access.allows(user, 'publish', '/service/admin/reset'));
    assert.ok(access.allows(admin, 'publish', '/service/admin/reset'));
    assert.ok(!access.allows(undefined, 'subscribe', '/**'), 'a pattern wider than every rule falls to the default');

    const readOnly = new ChannelAccess(noTokens, false, { clientPublish: false });
    assert.ok(!readOnly.allows(undefined, 'publish', '/x'));
    assert.ok(!readOnly.allows(principal({ publish: ['/**'] }), 'publish', '/x'), 'not even a token');
    assert.ok(readOnly.allows(undefined, 'publish', '/service/x'));
    assert.ok(readOnly.allows(undefined, 'subscribe', '/x'));
  });

  test('validatePermissions names the key at fault', () => {
    assert.throws(() => validatePermissions({ channel: [] }), /permissions\.channel is not a setting/);
    assert.throws(() => validatePermissions({ clientPublish: 'no' }), /permissions\.clientPublish must be true or false/);
    assert.throws(() => validatePermissions({ channels: [{ pattern: '/a/**', subscribe: 'everyone' }] }), /permissions\.channels\[0\]\.subscribe must be/);
    assert.throws(() => validatePermissions({ channels: [{ pattern: 'a' }] }), /channels\[0\]\.pattern/);
    assert.throws(() => validatePermissions({ channels: [{ pattern: '/a', subscribe: 'anyone', read: true }] }), /channels\[0\]\.read is not a rule key/);
    assert.throws(() => validatePermissions({ channels: [{ pattern: '/a', publish: { claim: '' } }] }), /channels\[0\]\.publish/);
    assert.deepEqual(validatePermissions({ channels: [{ pattern: '/a/**', subscribe: { claim: 'role', equals: 'x' } }] }).channels?.length, 1);
  });
});

test('a rule may turn join/leave events on or off for the channels it covers: the first covering rule that says decides', () => {
  const access = new ChannelAccess(async () => ({ ok: false, reason: 'invalid', message: 'no' }), false, {
    channels: [{ pattern: '/chat/quiet/**', presence: 'off' }, { pattern: '/chat/**', subscribe: 'anyone', presence: 'events' }],
  });
  assert.equal(access.presenceEvents('/chat/a'), true);
  assert.equal(access.presenceEvents('/chat/quiet/a'), false);
  assert.equal(access.presenceEvents('/news'), false);
  assert.equal(access.presenceEvents('/chat/*'), false, 'patterns have no events: they are not one channel');
  assert.equal(access.hasPresenceEvents, true);
  assert.throws(() => validatePermissions({ channels: [{ pattern: '/a', presence: 'yes' }] }), /channels\[0\]\.presence must be "events" or "off"/);
});
