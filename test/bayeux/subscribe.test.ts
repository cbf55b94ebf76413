import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import type { Message } from '../../src/core/message.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';

describe('/meta/subscribe and /meta/unsubscribe', () => {
  test('echoes a single subscription and its id', async (t) => {
    const { port } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.open();
    const res = await client.send([{ channel: '/meta/subscribe', clientId: client.clientId, subscription: '/foo/**', id: '7' }]);
    assert.deepEqual(res.json(), [{ channel: '/meta/subscribe', id: '7', subscription: '/foo/**', successful: true }]);
  });

  test('accepts an array and echoes it; wildcards match as the spec says', async (t) => {
    const { port, herald } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.open();
    const reply = await client.subscribe(['/one/*', '/deep/**']);
    assert.deepEqual(reply.subscription, ['/one/*', '/deep/**']);
    assert.equal(reply.successful, true);
    for (const channel of ['/one', '/one/a', '/one/a/b', '/onex/a', '/deep', '/deep/a', '/deep/a/b/c']) await herald.publish(channel, channel);
    const got = (await client.connect({ advice: { timeout: 0 } })).json().slice(1).map((m: any) => m.channel);
    assert.deepEqual(got, ['/one/a', '/deep/a', '/deep/a/b/c']);
  });

  test('/** receives every broadcast channel', async (t) => {
    const { port, herald } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.open();
    await client.subscribe('/**');
    await herald.publish('/x', 1);
    await herald.publish('/y/z/w', 2);
    assert.deepEqual((await client.connect({ advice: { timeout: 0 } })).json().slice(1), [{ channel: '/x', data: 1 }, { channel: '/y/z/w', data: 2 }]);
  });

  test('refuses /meta/** with 403 and echoes the subscription', async (t) => {
    const { port } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.open();
    for (const subscription of ['/meta/connect', '/meta/**', '/meta']) {
      const reply = await client.subscribe(subscription);
      assert.equal(reply.successful, false);
      assert.equal(reply.error, `403:${subscription}:Forbidden channel`);
      assert.equal(reply.subscription, subscription);
    }
  });

  test('accepts /service/** without recording it', async (t) => {
    const { port, herald } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.open();
    const reply = await client.subscribe('/service/echo');
    assert.equal(reply.successful, true);
    assert.equal(herald.stats().patterns, 0);
  });

  test('is all-or-nothing for an array with a bad entry', async (t) => {
    const { port, herald } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.open();
    const reply = await client.subscribe(['/fine', '/not fine']);
    assert.equal(reply.successful, false);
    assert.equal(reply.error, '405:/not fine:Invalid subscription');
    assert.equal(herald.stats().patterns, 0);
  });

  test('names what is missing or malformed', async (t) => {
    const { port } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.open();
    const send = async (m: object) => (await client.send([{ channel: '/meta/subscribe', ...m }])).json()[0];
    assert.equal((await send({ subscription: '/a' })).error, '402:clientId:Missing required parameter');
    assert.equal((await send({ clientId: client.clientId })).error, '402:subscription:Missing required parameter');
    assert.match((await send({ clientId: client.clientId, subscription: 42 })).error, /^400::subscription must be/);
    assert.match((await send({ clientId: client.clientId, subscription: [] })).error, /^400::subscription must be/);
    const unknown = await send({ clientId: 'nobody', subscription: '/a' });
    assert.equal(unknown.error, '402::session_unknown');
    assert.equal(unknown.advice.reconnect, 'handshake');
  });

  test('bounds the subscriptions of one session', async (t) => {
    const { port } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.open();
    for (let batch = 0; batch < 4; batch++) {
      const reply = await client.subscribe(Array.from({ length: 256 }, (_, i) => `/many/${batch}/${i}`));
      assert.equal(reply.successful, true);
    }
    const over = await client.subscribe('/many/one-more');
    assert.equal(over.successful, false);
    assert.equal(over.error, '403:1024:too many subscriptions for one session');
    assert.equal((await client.subscribe('/many/0/0')).successful, true, 'subscribing again to one it holds is no new subscription');
  });

  test('unsubscribe stops deliveries and echoes', async (t) => {
    const { port, herald } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.open();
    await client.subscribe(['/u/a', '/u/b']);
    const res = await client.send([{ channel: '/meta/unsubscribe', clientId: client.clientId, subscription: '/u/a', id: 'x' }]);
    assert.deepEqual(res.json(), [{ channel: '/meta/unsubscribe', id: 'x', subscription: '/u/a', successful: true }]);
    await herald.publish('/u/a', 'gone');
    await herald.publish('/u/b', 'kept');
    assert.deepEqual((await client.connect({ advice: { timeout: 0 } })).json().slice(1), [{ channel: '/u/b', data: 'kept' }]);
    assert.equal(herald.stats().patterns, 1);
  });
});

describe('the resume point a subscribe answers (ext.herald.last)', () => {
  /** A memory engine on which another publisher's message lands while a resume point is being read. */
  class RacingEngine extends MemoryEngine {
    raced: Message | undefined;

    override async position(channel: string): Promise<string> {
      this.raced ??= await this.publish({ channel, data: 'published while subscribing' });
      return super.position(channel);
    }
  }

  test('is taken before the subscription is live: nothing this session receives live is at or before it', async (t) => {
    const engine = new RacingEngine();
    const { port } = await startHerald(t, { engine });
    const client = new RawBayeux(port);
    const handshake = await client.handshake({ ext: { herald: { ids: true } } });
    assert.equal(handshake.successful, true);
    await client.connect({ advice: { timeout: 0 } });
    const reply = await client.subscribe('/race');
    const last: string = reply.ext.herald.last;
    const received = (await client.connect({ advice: { timeout: 0 } })).json().slice(1);
    const raced = engine.raced!;
    // Received live with an id at or below `last`, a message would be lost to a client whose
    // connection dropped before it arrived: resuming from `last` skips it.
    for (const message of received) assert.ok(message.ext.herald.id > last, `${message.ext.herald.id} is after the resume point ${last}`);
    assert.ok(raced.id <= last, 'the message published before the subscription was live is before the resume point');
  });
});
