import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { postJson } from '../helpers/http.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';

describe('publish', () => {
  test('replies with the channel, success and the same id, and reaches subscribers only', async (t) => {
    const { port } = await startHerald(t);
    const sub = new RawBayeux(port);
    await sub.open();
    await sub.subscribe('/chat/*');
    const other = new RawBayeux(port);
    await other.open();
    await other.subscribe('/elsewhere');
    const pub = new RawBayeux(port);
    await pub.open();
    const res = await pub.send([{ channel: '/chat/room', clientId: pub.clientId, data: { text: 'hi' }, id: '42', ext: { secret: 'token' } }]);
    assert.deepEqual(res.json(), [{ channel: '/chat/room', successful: true, id: '42' }]);
    const got = (await sub.connect({ advice: { timeout: 0 } })).json();
    assert.deepEqual(got.slice(1), [{ channel: '/chat/room', data: { text: 'hi' } }], 'no clientId, id or ext of the publisher leaks');
    assert.equal((await other.connect({ advice: { timeout: 0 } })).json().length, 1);
  });

  test('accepts a single-object publish without clientId (REST style)', async (t) => {
    const { port } = await startHerald(t);
    const sub = new RawBayeux(port);
    await sub.open();
    await sub.subscribe('/foo');
    const res = await postJson(port, '/bayeux', { channel: '/foo', data: 'hi' });
    assert.deepEqual(res.json(), [{ channel: '/foo', successful: true }]);
    assert.deepEqual((await sub.connect({ advice: { timeout: 0 } })).json()[1], { channel: '/foo', data: 'hi' });
  });

  test('can require a session for publishing', async (t) => {
    const { port } = await startHerald(t, { allowPublishWithoutSession: false });
    const [reply] = (await postJson(port, '/bayeux', { channel: '/foo', data: 'hi' })).json();
    assert.equal(reply.error, '402:clientId:Missing required parameter');
  });

  test('refuses /meta/*, wildcards, invalid names and missing data, delivering nothing', async (t) => {
    const { port } = await startHerald(t);
    const sub = new RawBayeux(port);
    await sub.open();
    await sub.subscribe('/**');
    const pub = new RawBayeux(port);
    await pub.open();
    const cases: [object, string][] = [
      [{ channel: '/meta/foo', data: 1 }, '403:/meta/foo:Forbidden channel'],
      [{ channel: '/meta/subscribe/x', data: 1 }, '403:/meta/subscribe/x:Forbidden channel'],
      [{ channel: '/foo/*', data: 1 }, '405:/foo/*:Invalid channel'],
      [{ channel: '/foo/**', data: 1 }, '405:/foo/**:Invalid channel'],
      [{ channel: '/foo//bar', data: 1 }, '405:/foo//bar:Invalid channel'],
      [{ channel: 'foo', data: 1 }, '405:foo:Invalid channel'],
      [{ channel: '/foo bar', data: 1 }, '405:/foo bar:Invalid channel'],
      [{ channel: '/foo' }, '402:data:Missing required parameter'],
    ];
    for (const [message, error] of cases) {
      const res = await pub.send([{ ...message, clientId: pub.clientId }]);
      assert.equal(res.status, 200);
      const [reply] = res.json();
      assert.equal(reply.successful, false, JSON.stringify(message));
      assert.equal(reply.error, error);
    }
    assert.equal((await sub.connect({ advice: { timeout: 0 } })).json().length, 1, 'nothing was delivered');
  });

  test('a publisher subscribed to its channel receives its own message', async (t) => {
    const { port } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.open();
    await client.subscribe('/self');
    await client.publish('/self', 'echo');
    assert.deepEqual((await client.connect({ advice: { timeout: 0 } })).json()[1], { channel: '/self', data: 'echo' });
  });
});

describe('service channels', () => {
  test('answer the sender only, with the request id, and are never broadcast', async (t) => {
    const { port, herald } = await startHerald(t);
    herald.service('/service/echo', ({ data, clientId }) => ({ echoed: data, from: clientId !== undefined }));
    const spy = new RawBayeux(port);
    await spy.open();
    await spy.subscribe('/**');
    await spy.subscribe('/service/echo');
    const caller = new RawBayeux(port);
    await caller.open();
    const res = await caller.send([{ channel: '/service/echo', clientId: caller.clientId, data: 'ping', id: '5' }]);
    assert.deepEqual(res.json(), [
      { channel: '/service/echo', id: '5', successful: true, data: { echoed: 'ping', from: true } },
      { channel: '/service/echo', id: '5', successful: true },
    ]);
    assert.equal((await spy.connect({ advice: { timeout: 0 } })).json().length, 1, 'the spy saw nothing');
  });

  test('without a handler are acknowledged; a failing handler is an error reply', async (t) => {
    const { port, herald } = await startHerald(t);
    herald.service('/service/broken/**', () => {
      throw new Error('boom');
    });
    const client = new RawBayeux(port);
    await client.open();
    assert.deepEqual(await client.publish('/service/none', 1), [{ channel: '/service/none', successful: true, id: '3' }]);
    const [reply] = await client.publish('/service/broken/x', 1);
    assert.equal(reply.successful, false);
    assert.equal(reply.error, '500:/service/broken/x:Service failed');
  });

  test('only /service/ channels can have handlers', async (t) => {
    const { herald } = await startHerald(t);
    assert.throws(() => herald.service('/chat', () => 1), { code: 'HERALD_ERR_INVALID_CHANNEL' });
    await assert.rejects(herald.publish('/meta/x', 1), { code: 'HERALD_ERR_INVALID_CHANNEL' });
    await assert.rejects(herald.publish('/a/*', 1), { code: 'HERALD_ERR_INVALID_CHANNEL' });
  });
});
