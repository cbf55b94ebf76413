/** The browser bundle as built: small, self-contained, and it defines `Herald`. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createContext, Script } from 'node:vm';
import { gzipSync } from 'node:zlib';
import { test } from 'node:test';

const BUNDLE = fileURLToPath(new URL('../../../dist/herald.js', import.meta.url));
const LIMIT_BYTES = 12 * 1024;

test(`dist/herald.js stays under ${LIMIT_BYTES / 1024} KiB minified and gzipped`, () => {
  const code = readFileSync(BUNDLE);
  const gzipped = gzipSync(code, { level: 9 }).length;
  assert.ok(gzipped < LIMIT_BYTES, `${gzipped} bytes gzipped`);
  assert.ok(!code.toString('utf8').includes('\n  '), 'minified');
});

test('the bundle runs on its own and puts Herald on the global object', () => {
  const sandbox: Record<string, unknown> = {};
  createContext(sandbox);
  new Script(readFileSync(BUNDLE, 'utf8')).runInContext(sandbox);
  assert.equal(typeof sandbox.Herald, 'function');
  assert.deepEqual(Object.keys(sandbox), ['Herald'], 'nothing else leaks into the page');
});
