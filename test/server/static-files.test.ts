/** `/herald.js` and the demo pages: served from a fixed table, cacheable, and only when enabled. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { httpRequest } from '../helpers/http.js';
import { startHerald } from '../helpers/herald.js';

const BUNDLE = fileURLToPath(new URL('../../../dist/herald.js', import.meta.url));

describe('static files', () => {
  test('/herald.js is the built bundle, with an ETag that answers 304', async (t) => {
    const { port } = await startHerald(t);
    const res = await httpRequest(port, { path: '/herald.js' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.text, readFileSync(BUNDLE, 'utf8'));
    const etag = res.headers.etag as string;
    assert.match(etag, /^"[\w-]{22}"$/);
    const again = await httpRequest(port, { path: '/herald.js', headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.text, '');
    const head = await httpRequest(port, { path: '/herald.js', method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
    assert.equal((await httpRequest(port, { path: '/herald.js', method: 'POST', body: 'x' })).status, 404);
  });

  test('the demo is off unless asked for, and its pages carry a strict content policy', async (t) => {
    const off = await startHerald(t);
    assert.equal((await httpRequest(off.port, { path: '/' })).status, 404);
    assert.equal((await httpRequest(off.port, { path: '/chat.js' })).status, 404);
    const on = await startHerald(t, { demo: true });
    const page = await httpRequest(on.port, { path: '/' });
    assert.equal(page.status, 200);
    assert.match(page.text, /<script src="\/herald.js"><\/script>/);
    assert.match(page.headers['content-security-policy'] as string, /default-src 'self'/);
    assert.equal((await httpRequest(on.port, { path: '/ticker' })).status, 200);
    for (const path of ['/../package.json', '/web/index.html', '/index.html?x', '/%2e%2e/package.json', '/constructor', '/__proto__']) {
      assert.equal((await httpRequest(on.port, { path })).status, 404, path);
    }
  });

  test('can be switched off when Herald is attached to an app that serves its own', async (t) => {
    const { port } = await startHerald(t, { clientScript: false });
    assert.equal((await httpRequest(port, { path: '/herald.js' })).status, 404);
  });
});
