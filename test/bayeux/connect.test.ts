import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

describe('/meta/connect', () => {
  test('answers the first connect at once, with advice', async (t) => {
    const { port } = await startHerald(t, { timeoutMs: 5_000 });
    const client = new RawBayeux(port);
    await client.handshake();
    const res = await client.connect();
    assert.ok(res.elapsedMs < 1000, `took ${res.elapsedMs} ms`);
    const [reply] = res.json();
    assert.equal(reply.successful, true);
    assert.equal(reply.advice.reconnect, 'retry');
  });

  test("a held connect's reply echoes its id and answers its timesync; with neither, it carries neither", async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const client = new RawBayeux(port);
    await client.open();
    await client.subscribe('/held/echo');
    const tc = Date.now();
    const held = client.connect({ id: 'held-7', ext: { timesync: { tc, l: 0, o: 0 } } });
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    await herald.publish('/held/echo', 'x');
    const [reply, delivery] = (await held).json();
    assert.equal(reply.id, 'held-7');
    assert.equal(reply.successful, true);
    assert.equal(reply.ext.timesync.tc, tc);
    assert.ok(reply.ext.timesync.p >= 0);
    assert.deepEqual(delivery, { channel: '/held/echo', data: 'x' });

    const bare = client.send([{ channel: '/meta/connect', clientId: client.clientId, connectionType: 'long-polling' }]);
    await waitFor('the bare connect to be held', () => herald.stats().heldConnects === 1);
    await herald.publish('/held/echo', 'y');
    const [bareReply] = (await bare).json();
    assert.equal(bareReply.successful, true);
    assert.equal('id' in bareReply, false);
    assert.equal(bareReply.ext, undefined);
  });

  test('holds an idle connect for the advised timeout and then answers successfully', async (t) => {
    const { port } = await startHerald(t, { timeoutMs: 400 });
    const client = new RawBayeux(port);
    await client.open();
    const res = await client.connect();
    assert.equal(res.status, 200);
    assert.ok(res.elapsedMs >= 380 && res.elapsedMs < 2000, `held ${res.elapsedMs} ms`);
    const body = res.json();
    assert.equal(body.length, 1);
    assert.equal(body[0].successful, true);
    assert.deepEqual(body[0].advice, { reconnect: 'retry', interval: 0, timeout: 400, maxInterval: 10_000 });
  });

  test('honours a shorter client timeout', async (t) => {
    const { port } = await startHerald(t, { timeoutMs: 30_000 });
    const client = new RawBayeux(port);
    await client.open();
    const res = await client.connect({ advice: { timeout: 200 } });
    assert.ok(res.elapsedMs >= 180 && res.elapsedMs < 5000, `held ${res.elapsedMs} ms`);
  });

  test('wakes a held connect within milliseconds of a publish, with the concrete channel', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const client = new RawBayeux(port);
    await client.open();
    await client.subscribe('/foo/**');
    const held = client.connect();
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    const published = performance.now();
    const publisher = new RawBayeux(port);
    await publisher.publish('/foo/a/b', { x: 1 });
    const res = await held;
    const wake = performance.now() - published;
    assert.ok(wake < 1000, `woke after ${wake} ms`);
    const [reply, delivery] = res.json();
    assert.equal(reply.channel, '/meta/connect');
    assert.equal(reply.successful, true);
    assert.deepEqual(delivery, { channel: '/foo/a/b', data: { x: 1 } });
  });

  test('answers at once when the client asks for timeout 0 or batches the connect', async (t) => {
    const { port } = await startHerald(t, { timeoutMs: 30_000 });
    const client = new RawBayeux(port);
    await client.open();
    const zero = await client.connect({ advice: { timeout: 0 } });
    assert.ok(zero.elapsedMs < 1000);
    await client.subscribe('/batch');
    const batched = await client.send([
      { channel: '/batch', clientId: client.clientId, data: 'mine', id: 'p1' },
      client.connectMessage(),
    ]);
    assert.ok(batched.elapsedMs < 1000, `took ${batched.elapsedMs} ms`);
    const body = batched.json();
    assert.deepEqual(body[0], { channel: '/batch', id: 'p1', successful: true });
    assert.equal(body[1].channel, '/meta/connect');
    assert.deepEqual(body[2], { channel: '/batch', data: 'mine' }, 'the publisher is subscribed: it receives its own message');
  });

  test('answers at once with what was queued between connects', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const client = new RawBayeux(port);
    await client.open();
    await client.subscribe('/queued');
    for (let i = 0; i < 3; i++) await herald.publish('/queued', i);
    const res = await client.connect();
    assert.ok(res.elapsedMs < 1000);
    assert.deepEqual(res.json().slice(1), [0, 1, 2].map((data) => ({ channel: '/queued', data })));
  });

  test('a second connect releases the first with a normal reply, and takes the messages', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const client = new RawBayeux(port);
    await client.open();
    await client.subscribe('/dup');
    const first = client.connect();
    await waitFor('the first connect to be held', () => herald.stats().heldConnects === 1);
    const second = client.connect();
    const firstRes = await first;
    assert.equal(firstRes.status, 200, 'never 408 or 5xx');
    assert.equal(firstRes.json().length, 1);
    assert.equal(firstRes.json()[0].successful, true);
    await herald.publish('/dup', 'to the newer one');
    const secondRes = await second;
    assert.deepEqual(secondRes.json()[1], { channel: '/dup', data: 'to the newer one' });
  });

  test('tells an unknown client to handshake again', async (t) => {
    const { port } = await startHerald(t);
    const client = new RawBayeux(port);
    client.clientId = 'nosuchclient';
    const res = await client.connect();
    assert.equal(res.status, 200);
    const [reply] = res.json();
    assert.equal(reply.successful, false);
    assert.equal(reply.error, '402::session_unknown');
    assert.deepEqual(reply.advice, { reconnect: 'handshake', interval: 0 });
  });

  test('a client object where text is expected gets an error reply, not a 500', async (t) => {
    const { port } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.handshake();
    const res = await client.send([{ channel: '/meta/connect', clientId: client.clientId, connectionType: { toString: 1 } }, { channel: '/x', data: 1, error: { toString: 1 } }]);
    assert.equal(res.status, 200);
    const [connect, publish] = res.json();
    assert.equal(connect.error, '301:object:Connection types not supported');
    assert.equal(publish.error, '400::error must be a string');
  });

  test('names a missing clientId or connectionType, and refuses an unknown connection type', async (t) => {
    const { port } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.handshake();
    const noId = (await client.send([{ channel: '/meta/connect', connectionType: 'long-polling' }])).json()[0];
    assert.equal(noId.error, '402:clientId:Missing required parameter');
    const noType = (await client.send([{ channel: '/meta/connect', clientId: client.clientId }])).json()[0];
    assert.equal(noType.error, '402:connectionType:Missing required parameter');
    const flash = (await client.send([{ channel: '/meta/connect', clientId: client.clientId, connectionType: 'flash' }])).json()[0];
    assert.equal(flash.successful, false);
    assert.match(flash.error, /^301:flash:/);
  });

  test('refuses a clientId presented with another browser cookie', async (t) => {
    const { port } = await startHerald(t);
    const owner = new RawBayeux(port);
    await owner.handshake();
    const thief = new RawBayeux(port);
    thief.cookie = 'BAYEUX_BROWSER=someoneelse';
    thief.clientId = owner.clientId;
    const [reply] = (await thief.connect({ advice: { timeout: 0 } })).json();
    assert.equal(reply.error, '402::session_unknown');
  });

  test('lets one browser hold one long-poll; its other tabs poll with multiple-clients advice', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000, multiSessionIntervalMs: 1500 });
    const tab1 = new RawBayeux(port);
    await tab1.open();
    const tab2 = new RawBayeux(port);
    tab2.cookie = tab1.cookie;
    await tab2.open();
    const held = tab1.connect();
    await waitFor('tab 1 to hold its connect', () => herald.stats().heldConnects === 1);
    const res = await tab2.connect();
    assert.ok(res.elapsedMs < 1000, `tab 2 was answered at once (${res.elapsedMs} ms)`);
    const [reply] = res.json();
    assert.equal(reply.successful, true);
    assert.deepEqual(reply.advice, { reconnect: 'retry', interval: 1500, timeout: 30_000, 'multiple-clients': true });
    await tab1.send([{ channel: '/meta/disconnect', clientId: tab1.clientId }]);
    await held;
    const after = tab2.connect({ advice: { timeout: 300 } });
    assert.ok((await after).elapsedMs >= 250, 'once tab 1 left, tab 2 may hold');
  });

  test('expires a session that stops connecting', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 1000, maxIntervalMs: 200 });
    const client = new RawBayeux(port);
    await client.open();
    assert.equal(herald.sessionCount, 1);
    await waitFor('the session to expire', () => herald.sessionCount === 0);
    const [reply] = (await client.connect()).json();
    assert.equal(reply.error, '402::session_unknown');
  });
});

describe('/meta/connect replacing a held connect of the same browser', () => {
  test('keeps the browser slot taken, so another tab still polls', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000, multiSessionIntervalMs: 1000 });
    const tab1 = new RawBayeux(port);
    await tab1.open();
    const first = tab1.connect();
    await waitFor('tab 1 to hold', () => herald.stats().heldConnects === 1);
    const second = tab1.connect(); // replaces the first
    await first;
    await waitFor('tab 1 to hold again', () => herald.stats().heldConnects === 1);
    const tab2 = new RawBayeux(port);
    tab2.cookie = tab1.cookie;
    await tab2.open();
    const [reply] = (await tab2.connect()).json();
    assert.equal(reply.advice['multiple-clients'], true, 'tab 1 still holds the browser slot');
    await tab1.send([{ channel: '/meta/disconnect', clientId: tab1.clientId }]);
    await second;
  });
});
