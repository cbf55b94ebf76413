import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { postJson } from '../helpers/http.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';

const ALL_TYPES = ['websocket', 'long-polling', 'cross-origin-long-polling', 'callback-polling', 'eventsource'];

describe('/meta/handshake', () => {
  test('succeeds with a clientId, the offered types and retry advice, and sets the browser cookie', async (t) => {
    const { port } = await startHerald(t, { timeoutMs: 25_000 });
    const res = await postJson(port, '/bayeux', [
      { channel: '/meta/handshake', version: '1.0', minimumVersion: '1.0', supportedConnectionTypes: ['websocket', 'long-polling'], id: '1', advice: { timeout: 60000, interval: 0 } },
    ]);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const [reply] = res.json();
    assert.equal(reply.channel, '/meta/handshake');
    assert.equal(reply.successful, true);
    assert.equal(reply.id, '1');
    assert.equal(reply.version, '1.0');
    assert.match(reply.clientId, /^[0-9a-z]{32,}$/, 'alphanumeric, at least 128 bits');
    assert.deepEqual(reply.supportedConnectionTypes, ALL_TYPES);
    assert.deepEqual(reply.advice, { reconnect: 'retry', interval: 0, timeout: 25_000, maxInterval: 10_000 });
    assert.match(String(res.headers['set-cookie']), /^BAYEUX_BROWSER=[0-9a-f]{40}; Path=\/; HttpOnly; SameSite=Lax$/);
  });

  test('gives every session its own unguessable id', async (t) => {
    const { port } = await startHerald(t);
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) ids.add((await new RawBayeux(port).handshake()).clientId);
    assert.equal(ids.size, 20);
  });

  test('keeps the browser cookie it was sent', async (t) => {
    const { port } = await startHerald(t);
    const client = new RawBayeux(port);
    client.cookie = 'BAYEUX_BROWSER=abc123';
    const res = await client.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]);
    assert.equal(res.json()[0].successful, true);
    assert.equal(res.headers['set-cookie'], undefined);
  });

  test('offers exactly the enabled connection types', async (t) => {
    const { port } = await startHerald(t, { transports: ['long-polling', 'websocket'] });
    const [reply] = (await postJson(port, '/bayeux', [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['callback-polling', 'long-polling'] }])).json();
    assert.deepEqual(reply.supportedConnectionTypes, ['long-polling', 'cross-origin-long-polling', 'websocket']);
    const [refused] = (await postJson(port, '/bayeux', [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['callback-polling'] }])).json();
    assert.equal(refused.error, '301:callback-polling:Connection types not supported');
  });

  test('fails without a version, naming it, and tells the client to stop', async (t) => {
    const { port } = await startHerald(t);
    const [reply] = (await postJson(port, '/bayeux', [{ channel: '/meta/handshake', supportedConnectionTypes: ['long-polling'], id: '9' }])).json();
    assert.equal(reply.successful, false);
    assert.equal(reply.error, '402:version:Missing required parameter');
    assert.equal(reply.id, '9');
    assert.deepEqual(reply.advice, { reconnect: 'none' });
  });

  test('fails when no connection type is in common, listing its own', async (t) => {
    const { port } = await startHerald(t);
    const [reply] = (await postJson(port, '/bayeux', [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['flash'] }])).json();
    assert.equal(reply.successful, false);
    assert.equal(reply.error, '301:flash:Connection types not supported');
    assert.deepEqual(reply.supportedConnectionTypes, ALL_TYPES);
    assert.equal(reply.advice.reconnect, 'none');
  });

  test('fails on a missing or malformed supportedConnectionTypes and on a version 2', async (t) => {
    const { port } = await startHerald(t);
    const send = async (m: object) => (await postJson(port, '/bayeux', [{ channel: '/meta/handshake', ...m }])).json()[0];
    assert.equal((await send({ version: '1.0' })).error, '402:supportedConnectionTypes:Missing required parameter');
    assert.match((await send({ version: '1.0', supportedConnectionTypes: 'long-polling' })).error, /^400::supportedConnectionTypes/);
    assert.equal((await send({ version: '2.0', supportedConnectionTypes: ['long-polling'] })).error, '300:2.0:Version mismatch');
    assert.match((await send({ version: { toString: 1 }, supportedConnectionTypes: ['long-polling'] })).error, /^400::version must be a string/);
  });

  test('answers the other messages of a batched handshake with an error, and processes none of them', async (t) => {
    const { port, herald } = await startHerald(t);
    const observer = new RawBayeux(port);
    await observer.open();
    await observer.subscribe('/sneaky');
    const res = await postJson(port, '/bayeux', [
      { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: '1' },
      { channel: '/sneaky', data: 'should not be published', id: '2' },
    ]);
    assert.equal(res.status, 200);
    const [handshake, other] = res.json();
    assert.equal(handshake.successful, true);
    assert.deepEqual(other, { channel: '/sneaky', id: '2', successful: false, error: '400::a handshake must be alone in its request' });
    const poll = (await observer.connect({ advice: { timeout: 0 } })).json();
    assert.equal(poll.length, 1, 'nothing was delivered');
    assert.equal(herald.sessionCount, 2);
  });
});
