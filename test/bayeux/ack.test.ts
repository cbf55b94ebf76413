import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

describe('acknowledged delivery (CometD ack extension)', () => {
  test('numbers connect replies and sends again, in order, what the client did not acknowledge', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 30_000 });
    const client = new RawBayeux(port);
    const handshake = await client.handshake({ ext: { ack: true } });
    assert.deepEqual(handshake.ext, { ack: true });
    await client.connect({ advice: { timeout: 0 }, ext: { ack: 0 } });
    await client.subscribe('/acked');
    await herald.publish('/acked', 1);
    await herald.publish('/acked', 2);

    const first = (await client.connect({ ext: { ack: 0 } })).json();
    assert.equal(first[0].ext.ack, 1);
    assert.deepEqual(first.slice(1).map((m: any) => m.data), [1, 2]);

    // That reply was "lost": the client still acknowledges batch 0, so it gets 1 and 2 again, at once.
    await herald.publish('/acked', 3);
    const again = (await client.connect({ ext: { ack: 0 } })).json();
    assert.ok(again[0].ext.ack > 1);
    assert.deepEqual(again.slice(1).map((m: any) => m.data), [1, 2, 3]);

    // Acknowledged: the next connect is held, and carries only what is new.
    const held = client.connect({ ext: { ack: again[0].ext.ack } });
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    await herald.publish('/acked', 4);
    const next = (await held).json();
    assert.equal(next[0].ext.ack, again[0].ext.ack + 1);
    assert.deepEqual(next.slice(1).map((m: any) => m.data), [4]);
  });

  test('what awaits acknowledgement counts toward --max-queue: a client that never acknowledges is closed as a slow consumer', async (t) => {
    const { port, herald } = await startHerald(t, { maxQueue: 10 });
    const client = new RawBayeux(port);
    await client.handshake({ ext: { ack: true } });
    await client.connect({ advice: { timeout: 0 }, ext: { ack: 0 } });
    await client.subscribe('/flood');
    const sizes: number[] = [];
    let last: any;
    for (let round = 0; round < 5 && herald.sessionCount === 1; round++) {
      for (let i = 0; i < 4; i++) await herald.publish('/flood', round * 4 + i);
      const reply = (await client.connect({ advice: { timeout: 0 }, ext: { ack: 0 } })).json();
      last = reply[0];
      if (last.successful) sizes.push(reply.length - 1);
    }
    assert.deepEqual(sizes, [4, 8], 'each reply resends what is unacknowledged, never past the limit');
    assert.equal(herald.sessionCount, 0, 'closed when unacknowledged and queued messages passed 10');
    assert.equal(herald.stats().limits.queue_closed, 1);
    assert.equal(last.successful, false);
    assert.equal(last.advice.reconnect, 'handshake');
  });

  test('a client that acknowledges receives far more than --max-queue, batch by batch', async (t) => {
    const { port, herald } = await startHerald(t, { maxQueue: 10 });
    const client = new RawBayeux(port);
    await client.handshake({ ext: { ack: true } });
    let ack = (await client.connect({ advice: { timeout: 0 }, ext: { ack: 0 } })).json()[0].ext.ack;
    await client.subscribe('/steady');
    const got: unknown[] = [];
    // Five in flight and five queued stay within 10.
    for (let round = 0; round < 8; round++) {
      for (let i = 0; i < 5; i++) await herald.publish('/steady', round * 5 + i);
      const reply = (await client.connect({ advice: { timeout: 0 }, ext: { ack } })).json();
      ack = reply[0].ext.ack;
      got.push(...reply.slice(1).map((m: any) => m.data));
    }
    assert.deepEqual(got, Array.from({ length: 40 }, (_, i) => i));
    assert.equal(herald.sessionCount, 1);
  });

  test('sessions without the extension are unchanged', async (t) => {
    const { port, herald } = await startHerald(t);
    const client = new RawBayeux(port);
    const handshake = await client.handshake();
    assert.equal(handshake.ext, undefined);
    await client.connect({ advice: { timeout: 0 } });
    await client.subscribe('/plain');
    await herald.publish('/plain', 1);
    const reply = (await client.connect({ ext: { ack: 0 } })).json();
    assert.equal(reply[0].ext, undefined);
    assert.equal(reply.length, 2);
  });
});

describe('retried publishes', () => {
  test('a publish sent again with the same clientId and id is delivered once', async (t) => {
    const { port } = await startHerald(t);
    const sub = new RawBayeux(port);
    await sub.open();
    await sub.subscribe('/once');
    const pub = new RawBayeux(port);
    await pub.open();
    const message = { channel: '/once', clientId: pub.clientId, data: 'hello', id: '42' };
    const first = (await pub.send([message])).json();
    const retry = (await pub.send([message])).json();
    assert.deepEqual(first, [{ channel: '/once', id: '42', successful: true }]);
    assert.deepEqual(retry, first, 'the retry is acknowledged the same way');
    await pub.send([{ ...message, id: '43', data: 'next' }]);
    const got = (await sub.connect({ advice: { timeout: 0 } })).json().slice(1);
    assert.deepEqual(got.map((m: any) => m.data), ['hello', 'next']);
  });
});
