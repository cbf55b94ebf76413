import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { expandChannel, isChannelName, parseChannel } from '../../src/core/channel.js';
import { ChannelIndex } from '../../src/core/channel-index.js';

describe('channel grammar', () => {
  test('accepts names, patterns and every mark the grammar allows', () => {
    for (const name of ['/a', '/foo/bar', '/a-b_c!d~e(f)g$h@i/2', '/meta/connect', '/service/echo']) {
      assert.equal(isChannelName(name), true, name);
    }
    assert.deepEqual(parseChannel('/foo/*'), { name: '/foo/*', kind: 'broadcast', wildcard: 'one' });
    assert.deepEqual(parseChannel('/foo/**'), { name: '/foo/**', kind: 'broadcast', wildcard: 'deep' });
    assert.deepEqual(parseChannel('/**'), { name: '/**', kind: 'broadcast', wildcard: 'deep' });
  });

  test('rejects what breaks it', () => {
    for (const bad of ['', '/', 'foo', '/foo/', '//foo', '/foo//bar', '/foo bar', '/foo.bar', '/foo/*/bar', '/foo/***', '/fo*', '/**/x', 42, null, undefined, {}]) {
      assert.equal(parseChannel(bad), undefined, String(bad));
    }
    assert.equal(parseChannel('/' + 'a'.repeat(2000)), undefined, 'overlong');
  });

  test('the same answers when a name is parsed again, between others and after invalid ones', () => {
    const names = ['/a/b', '/a/b', '/a/*', '/a/b', 'a/b', '/a/b', '/meta/x', '/a/b', '/a//b', '/a/b', '/a/**', '/a/**'];
    const first = new Map<string, unknown>();
    for (const name of names) {
      const parsed = parseChannel(name);
      if (!first.has(name)) first.set(name, parsed === undefined ? undefined : { ...parsed });
      assert.deepEqual(parsed === undefined ? undefined : { ...parsed }, first.get(name), name);
    }
    assert.deepEqual({ ...parseChannel('/a/b')! }, { name: '/a/b', kind: 'broadcast', wildcard: 'none' });
    assert.equal(parseChannel('/a//b'), undefined);
    assert.throws(() => ((parseChannel('/a/b') as { name: string }).name = '/x'), TypeError, 'a parse shared by callers is frozen');
  });

  test('knows reserved namespaces', () => {
    assert.equal(parseChannel('/meta/handshake')?.kind, 'meta');
    assert.equal(parseChannel('/meta')?.kind, 'meta');
    assert.equal(parseChannel('/meta/**')?.kind, 'meta');
    assert.equal(parseChannel('/service/x/y')?.kind, 'service');
    assert.equal(parseChannel('/services/x')?.kind, 'broadcast');
    assert.equal(parseChannel('/metadata')?.kind, 'broadcast');
  });

  test('expands a name into the patterns that match it, most specific first', () => {
    assert.deepEqual(expandChannel('/foo/bar/qux'), ['/foo/bar/qux', '/foo/bar/*', '/foo/bar/**', '/foo/**', '/**']);
    assert.deepEqual(expandChannel('/a'), ['/a', '/*', '/**']);
  });
});

/** The obvious, slow matcher the index must agree with: segment by segment. */
function naiveMatches(pattern: string, channel: string): boolean {
  const p = pattern.split('/').slice(1);
  const c = channel.split('/').slice(1);
  const last = p[p.length - 1];
  if (last === '**') return c.length >= p.length && p.slice(0, -1).every((s, i) => s === c[i]);
  if (last === '*') return c.length === p.length && p.slice(0, -1).every((s, i) => s === c[i]);
  return p.length === c.length && p.every((s, i) => s === c[i]);
}

describe('ChannelIndex', () => {
  const segment = fc.constantFrom('a', 'b', 'c', 'meta', 'x-1');
  const name = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => '/' + s.join('/'));
  const pattern = fc.oneof(
    name,
    fc.array(segment, { minLength: 0, maxLength: 3 }).map((s) => '/' + [...s, '*'].join('/')),
    fc.array(segment, { minLength: 0, maxLength: 3 }).map((s) => '/' + [...s, '**'].join('/')),
  );

  test('finds exactly the subscribers a naive matcher finds (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(pattern, fc.integer({ min: 0, max: 20 })), { maxLength: 40 }), name, (subscriptions, channel) => {
        const index = new ChannelIndex<number>();
        for (const [p, subscriber] of subscriptions) index.add(p, subscriber);
        const expected = new Set(subscriptions.filter(([p]) => naiveMatches(p, channel)).map(([, s]) => s));
        assert.deepEqual(index.match(channel), expected);
      }),
      { numRuns: 500 },
    );
  });

  test('stays consistent under interleaved adds and removes (property)', () => {
    const op = fc.tuple(fc.boolean(), pattern, fc.integer({ min: 0, max: 5 }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), name, (ops, channel) => {
        const index = new ChannelIndex<number>();
        const model = new Set<string>();
        for (const [add, p, s] of ops) {
          const key = `${p} ${s}`;
          if (add) {
            assert.equal(index.add(p, s), ![...model].some((k) => k.startsWith(p + ' ')));
            model.add(key);
          } else {
            const existed = model.delete(key);
            const nowEmpty = ![...model].some((k) => k.startsWith(p + ' '));
            assert.equal(index.remove(p, s), existed && nowEmpty);
          }
        }
        const expected = new Set([...model].map((k) => k.split(' ')).filter(([p]) => naiveMatches(p!, channel)).map(([, s]) => Number(s)));
        assert.deepEqual(index.match(channel), expected);
        const livePatterns = new Set([...model].map((k) => k.split(' ')[0]));
        assert.equal(index.patternCount, livePatterns.size);
      }),
      { numRuns: 300 },
    );
  });

  test('remove reports when a pattern loses its last subscriber', () => {
    const index = new ChannelIndex<string>();
    assert.equal(index.add('/a/*', 's1'), true);
    assert.equal(index.add('/a/*', 's2'), false);
    assert.equal(index.remove('/a/*', 's1'), false);
    assert.equal(index.remove('/a/*', 'nobody'), false);
    assert.equal(index.remove('/a/*', 's2'), true);
    assert.equal(index.patternCount, 0);
  });
});
