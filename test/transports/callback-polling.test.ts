import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { callbackName, wrapJsonp } from '../../src/transports/callback-polling.js';
import { httpRequest } from '../helpers/http.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

const HANDSHAKE = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['callback-polling'], id: '1' };

function jsonpGet(port: number, messages: unknown, jsonp: string | null, path = '/bayeux') {
  const params = new URLSearchParams();
  if (jsonp !== null) params.set('jsonp', jsonp);
  params.set('message', JSON.stringify(messages));
  return httpRequest(port, { path: `${path}?${params}` });
}

/** Runs a JSONP body as a browser would, returning what the callback received. */
function runJsonp(body: string, callback: string): unknown {
  let received: unknown;
  runInNewContext(body, { [callback]: (value: unknown) => (received = value) });
  // Objects from another realm: bring them into this one to compare.
  return JSON.parse(JSON.stringify(received));
}

describe('callback-polling (JSONP)', () => {
  test('wraps replies in the named callback, with hardened headers', async (t) => {
    const { port } = await startHerald(t);
    const res = await jsonpGet(port, [HANDSHAKE], '_cometd_jsonp_3', '/cometd/handshake');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['content-disposition'], 'attachment; filename=f.txt');
    assert.equal(res.headers['x-accel-buffering'], 'no');
    assert.match(res.text, /^\/\*\*\/_cometd_jsonp_3\(\[.*\]\);$/s);
    const [reply] = runJsonp(res.text, '_cometd_jsonp_3') as any[];
    assert.equal(reply.successful, true);
  });

  test('uses jsonpcallback when the parameter is empty', async (t) => {
    const { port } = await startHerald(t);
    const res = await jsonpGet(port, [HANDSHAKE], '');
    assert.match(res.text, /^\/\*\*\/jsonpcallback\(/);
  });

  test('refuses unsafe callback names with 400, never reflecting them', async (t) => {
    const { port } = await startHerald(t);
    for (const name of ['alert(1)//', 'a b', '<script>', 'x'.repeat(65), 'cb;evil', 'é']) {
      const res = await jsonpGet(port, [HANDSHAKE], name);
      assert.equal(res.status, 400, name);
      assert.match(res.json().error, /invalid callback name in \?jsonp=/);
      assert.ok(!res.text.includes(name), `${name} is not reflected`);
    }
  });

  test('holds a connect and wakes it on delivery, like long-polling', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const client = new RawBayeux(port);
    await client.open();
    await client.subscribe('/jsonp');
    const connect = { channel: '/meta/connect', clientId: client.clientId, connectionType: 'callback-polling', id: '9' };
    const held = jsonpGet(port, [connect], 'cb');
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    await herald.publish('/jsonp', { line: 'sep\u2028para\u2029' });
    const res = await held;
    assert.ok(!res.text.includes('\u2028') && !res.text.includes('\u2029'), 'line separators are escaped');
    const body = runJsonp(res.text, 'cb') as any[];
    assert.deepEqual(body[1], { channel: '/jsonp', data: { line: 'sep\u2028para\u2029' } });
  });

  test('names a missing message parameter', async (t) => {
    const { port } = await startHerald(t);
    const res = await httpRequest(port, { path: '/bayeux?jsonp=cb' });
    assert.equal(res.status, 400);
    assert.match(res.json().error, /no messages/);
  });

  test('is refused when disabled', async (t) => {
    const { port } = await startHerald(t, { transports: ['long-polling'] });
    const res = await jsonpGet(port, [HANDSHAKE], 'cb');
    assert.equal(res.status, 400);
    assert.match(res.json().error, /callback-polling \(JSONP\) is not enabled/);
  });

  test('output is valid JavaScript that yields the JSON, for any string (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const json = JSON.stringify([{ channel: '/p', data: text }]);
        assert.deepEqual(runJsonp(wrapJsonp(callbackName('cb')!, json), 'cb'), JSON.parse(json));
      }),
      { numRuns: 300 },
    );
  });
});
