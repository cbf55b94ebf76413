import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { heraldIdOf, idBefore, rangeStartAfter, streamIdOf, timeOf } from '../../src/engines/redis/stream-ids.js';

const streamId = fc
  .tuple(fc.integer({ min: 0, max: 4_000_000_000_000 }), fc.integer({ min: 0, max: 36 ** 4 - 1 }))
  .map(([ms, seq]) => `${ms}-${seq}`);

function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am - bm || as - bs;
}

test('Herald ids of stream ids sort as the stream ids do, and map back', () => {
  fc.assert(
    fc.property(streamId, streamId, (a, b) => {
      const [ha, hb] = [heraldIdOf(a), heraldIdOf(b)];
      assert.equal(ha.length, 13);
      assert.match(ha, /^[0-9a-z]+$/);
      assert.equal(Math.sign(ha < hb ? -1 : ha > hb ? 1 : 0), Math.sign(compareStreamIds(a, b)));
      assert.equal(streamIdOf(ha), a);
      assert.equal(timeOf(a), Number(a.split('-')[0]));
    }),
  );
});

test('the range after any `since` text holds exactly the ids that sort after it as strings', () => {
  // Texts near real ids, and arbitrary ones: clients may send anything.
  const since = fc.oneof(
    streamId.map(heraldIdOf),
    fc.tuple(streamId.map(heraldIdOf), fc.nat(14), fc.string({ maxLength: 3 })).map(([id, cut, tail]) => id.slice(0, cut) + tail),
    fc.string({ maxLength: 16 }),
    fc.constantFrom('', '0', 'zzzzzzzzzzzzz', 'zzzzzzzzzzzzzz', '~', 'zz~', 'A', '0000000000000'),
  );
  fc.assert(
    fc.property(fc.array(streamId, { minLength: 1, maxLength: 20 }), since, (ids, after) => {
      const start = rangeStartAfter(after);
      const expected = ids.filter((id) => heraldIdOf(id) > after).sort(compareStreamIds);
      if (start === undefined) {
        assert.deepEqual(expected, []);
        return;
      }
      const exclusive = start.startsWith('(');
      const bound = exclusive ? start.slice(1) : start;
      const selected = ids.filter((id) => (exclusive ? compareStreamIds(id, bound) > 0 : compareStreamIds(id, bound) >= 0)).sort(compareStreamIds);
      assert.deepEqual(selected, expected);
    }),
    { numRuns: 2000 },
  );
});

test('idBefore is below every id of that millisecond', () => {
  assert.ok(idBefore(1_700_000_000_000) < heraldIdOf('1700000000000-0'));
  assert.ok(idBefore(1_700_000_000_000) > heraldIdOf('1699999999998-9'));
});
