/**
 * Piggybacked deliveries over raw HTTP (bayeux/ext/piggyback.ts): while no connect is held, what
 * is queued for a session that asked for it rides on the reply to a request it marks — and only
 * then: never for a session that did not ask, never past a held connect, never twice, in order.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { deferred, waitFor } from '../helpers/wait.js';

const MARK = { herald: { piggyback: true } };

/** A raw client subscribed to `channel`, past its first connect (so nothing is held), asking for piggyback or not. */
async function poller(port: number, channel: string, asks = true): Promise<RawBayeux> {
  const client = new RawBayeux(port);
  const reply = await client.handshake({ ext: { herald: { ids: true, ...(asks ? { piggyback: true } : {}) } } });
  assert.equal(reply.successful, true);
  assert.equal(reply.ext.herald.piggyback, asks ? true : undefined);
  assert.equal((await client.subscribe(channel)).successful, true);
  await client.connect({ advice: { timeout: 0 } });
  return client;
}

/** A publish of the client's own, marked as able to take deliveries on its reply. */
function markedPublish(client: RawBayeux, channel: string, data: unknown, mark: object = MARK) {
  return client.send([{ channel, data, clientId: client.clientId, id: client.nextId(), ext: mark }]);
}

/** The deliveries in a reply body: messages that answer nothing. */
const deliveriesIn = (body: any[]) => body.filter((message) => message.successful === undefined);

describe('piggybacked deliveries', () => {
  test('a marked publish reply carries what is queued, in order, with ids; the next connect has nothing left', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 300 });
    const client = await poller(port, '/chat/a');
    await herald.publish('/chat/a', 'first');
    await herald.publish('/chat/a', 'second');
    const body = (await markedPublish(client, '/chat/other', 'mine')).json();
    assert.equal(body[0].successful, true);
    const deliveries = deliveriesIn(body);
    assert.deepEqual(deliveries.map((m) => m.data), ['first', 'second']);
    assert.ok(deliveries.every((m) => typeof m.ext.herald.id === 'string'), 'each with its id, to resume from');
    assert.deepEqual(deliveriesIn((await client.connect()).json()), [], 'nothing delivered twice');
  });

  test('subscribes, unsubscribes and service calls carry them too', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 300 });
    herald.service('/service/echo', ({ data }) => data);
    const client = await poller(port, '/chat/a');
    await herald.publish('/chat/a', 1);
    let body = (await client.send([{ channel: '/meta/subscribe', subscription: '/chat/b', clientId: client.clientId, id: client.nextId(), ext: MARK }])).json();
    assert.deepEqual(deliveriesIn(body).map((m) => m.data), [1]);
    await herald.publish('/chat/b', 2);
    body = (await client.send([{ channel: '/meta/unsubscribe', subscription: '/chat/b', clientId: client.clientId, id: client.nextId(), ext: MARK }])).json();
    assert.deepEqual(deliveriesIn(body).map((m) => m.data), [2]);
    await herald.publish('/chat/a', 3);
    body = (await markedPublish(client, '/service/echo', 'ping')).json();
    assert.deepEqual(body.filter((m: any) => m.channel === '/service/echo' && m.data === 'ping').length, 1, 'the service answer');
    assert.deepEqual(deliveriesIn(body).map((m) => m.data), [3]);
  });

  test('not for a session whose handshake did not ask, nor for an unmarked request: the next connect carries them', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 300 });
    const plain = await poller(port, '/chat/a', false);
    const asked = await poller(port, '/chat/a');
    await herald.publish('/chat/a', 'queued');
    assert.deepEqual(deliveriesIn((await markedPublish(plain, '/chat/x', 1)).json()), [], 'the handshake did not ask');
    assert.deepEqual(deliveriesIn((await asked.publish('/chat/x', 2))), [], 'the request was not marked');
    assert.deepEqual(deliveriesIn((await markedPublish(asked, '/chat/x', 3, { herald: { piggyback: 'yes' } })).json()), [], 'only true marks');
    assert.deepEqual(deliveriesIn((await plain.connect()).json()).map((m) => m.data), ['queued']);
    assert.deepEqual(deliveriesIn((await asked.connect()).json()).map((m) => m.data), ['queued']);
  });

  test('a session with acknowledged delivery is not offered it (ack numbers connect replies only)', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 300 });
    const client = new RawBayeux(port);
    const reply = await client.handshake({ ext: { ack: true, herald: { piggyback: true } } });
    assert.equal(reply.ext.ack, true);
    assert.equal(reply.ext.herald, undefined);
    await client.subscribe('/chat/a');
    await client.connect({ advice: { timeout: 0 }, ext: { ack: 0 } });
    await herald.publish('/chat/a', 'acked');
    assert.deepEqual(deliveriesIn((await markedPublish(client, '/chat/x', 1)).json()), []);
    const connect = (await client.connect({ ext: { ack: 0 } })).json();
    assert.deepEqual(deliveriesIn(connect).map((m) => m.data), ['acked']);
    assert.equal(typeof connect[0].ext.ack, 'number');
  });

  test('a held connect takes the messages, not a marked reply', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 5_000 });
    const client = await poller(port, '/chat/a');
    const held = client.connect();
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    // Its own message, queued by its own publish: the held connect is woken for it.
    const body = (await markedPublish(client, '/chat/a', 'own')).json();
    assert.deepEqual(deliveriesIn(body), []);
    assert.deepEqual(deliveriesIn((await held).json()).map((m) => m.data), ['own']);
  });

  test('a connect held while a marked reply is being made takes what is queued meanwhile', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 5_000 });
    const gate = deferred();
    const entered = deferred();
    herald.service('/service/slow', async () => {
      entered.resolve();
      await gate.promise;
      // Queued while the connect is held, in the same turn as the reply is made.
      await herald.publish('/chat/a', 'meanwhile');
      return 'done';
    });
    const client = await poller(port, '/chat/a');
    const slow = markedPublish(client, '/service/slow', {});
    await entered.promise;
    const held = client.connect();
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    gate.resolve();
    assert.deepEqual(deliveriesIn((await slow).json()), []);
    assert.deepEqual(deliveriesIn((await held).json()).map((m) => m.data), ['meanwhile']);
  });

  test('300 messages over a mix of polls, held connects and marked replies: each once, in order', async (t) => {
    const { port, herald } = await startHerald(t, { timeoutMs: 5_000 });
    const client = await poller(port, '/load/**');
    const TOTAL = 300;
    const received: number[] = [];
    const take = (body: any[]) => {
      for (const message of deliveriesIn(body)) received.push(message.data);
    };
    let next = 0;
    const publishOutside = () => herald.publish('/load/a', next++);
    const kinds = { marked: 0, polls: 0, held: 0 };
    for (let round = 0; next < TOTAL; round++) {
      await publishOutside();
      await publishOutside();
      switch (round % 5) {
        case 0:
        case 2: {
          // Its own publish, which is itself queued for it (it subscribes to /load/**).
          const own = next++;
          const body = (await markedPublish(client, '/load/b', own)).json();
          if (deliveriesIn(body).length > 0) kinds.marked++;
          take(body);
          break;
        }
        case 1:
          take((await client.connect({ advice: { timeout: 0 } })).json());
          kinds.polls++;
          break;
        default: {
          take((await client.connect({ advice: { timeout: 0 } })).json());
          const held = client.connect();
          await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
          const racing = markedPublish(client, '/load/b', next++);
          await publishOutside();
          take((await racing).json());
          take((await held).json());
          kinds.held++;
        }
      }
    }
    while (received.length < next) {
      const body = (await client.connect({ advice: { timeout: 0 } })).json();
      take(body);
      if (deliveriesIn(body).length === 0) break;
    }
    assert.deepEqual(received, Array.from({ length: next }, (_, i) => i));
    assert.ok(kinds.marked > 30 && kinds.polls > 15 && kinds.held > 30, JSON.stringify(kinds));
  });
});
