import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { readCookie } from '../../src/transports/http.js';

const read = (cookie: string | undefined, name: string) => readCookie({ headers: { cookie } } as unknown as IncomingMessage, name);

test('reads a cookie by name: first occurrence, blanks trimmed, other names and malformed pairs skipped', () => {
  assert.equal(read(undefined, 'a'), undefined);
  assert.equal(read('', 'a'), undefined);
  assert.equal(read('a=1', 'a'), '1');
  assert.equal(read('ab=1; a=2', 'a'), '2', 'a longer name that starts the same is another cookie');
  assert.equal(read('xa=1;a = 2 ; a=3', 'a'), '2', 'blanks around name and value, first occurrence');
  assert.equal(read('a; b=1; a=4', 'a'), '4', 'a pair with no = names nothing');
  assert.equal(read('=a; a=5', 'a'), '5', 'an empty name is nobody');
  assert.equal(read(' =x; a=', 'a'), '');
  assert.equal(read('b=a=1; a=x=y', 'a'), 'x=y', 'only the first = splits');
  assert.equal(read('b=1;', 'a'), undefined);
  assert.equal(read('BAYEUX_BROWSER=abc; herald_token=t.k', 'herald_token'), 't.k');
});
