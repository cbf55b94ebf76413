/**
 * A session's subscriptions without a Set for the first one (core/subscriptions.ts): the same
 * answers as a Set, in the same order, through the growth to a Set and back down.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Subscriptions } from '../../src/core/subscriptions.js';

test('Subscriptions answers as a Set would, in insertion order, with one, several, and after deletes', () => {
  const subscriptions = new Subscriptions();
  const reference = new Set<string>();
  const same = () => {
    assert.deepEqual([...subscriptions], [...reference]);
    assert.equal(subscriptions.size, reference.size);
    for (const name of ['/a', '/b', '/c', '/d', '']) assert.equal(subscriptions.has(name), reference.has(name), name);
  };
  same();
  const steps: [op: 'add' | 'delete', name: string][] = [
    ['add', '/a'], ['add', '/a'], ['delete', '/b'], ['delete', '/a'], ['delete', '/a'], ['add', ''], ['add', '/b'],
    ['add', '/c'], ['add', '/b'], ['delete', ''], ['delete', '/c'], ['add', '/d'], ['delete', '/b'], ['delete', '/d'], ['add', '/a'],
  ];
  for (const [op, name] of steps) {
    if (op === 'add') assert.equal(subscriptions.add(name), subscriptions);
    else assert.equal(subscriptions.delete(name), reference.has(name), `delete ${name}`);
    reference[op](name);
    same();
  }
  subscriptions.clear();
  reference.clear();
  same();
});

test('Subscriptions: deleting while iterating, as a Set allows (a session closing leaves every pattern)', () => {
  for (const names of [['/one'], ['/one', '/two', '/three']]) {
    const subscriptions = new Subscriptions();
    for (const name of names) subscriptions.add(name);
    const seen: string[] = [];
    for (const name of subscriptions) {
      seen.push(name);
      subscriptions.delete(name);
    }
    assert.deepEqual(seen, names);
    assert.equal(subscriptions.size, 0);
  }
});
