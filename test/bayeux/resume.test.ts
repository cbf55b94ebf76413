import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HeraldError } from '../../src/core/errors.js';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import type { HistoryPage, HistoryQuery } from '../../src/core/engine.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { RawWs } from '../helpers/raw-ws.js';
import { onCleanup } from '../helpers/cleanup.js';

describe('Bayeux resume (ext.herald)', () => {
  test('a session that asks for ids gets them; others do not', async (t) => {
    const { port, herald } = await startHerald(t);
    const withIds = new RawBayeux(port);
    assert.deepEqual((await withIds.handshake({ ext: { herald: { ids: true } } })).ext, { herald: { ids: true } });
    await withIds.connect({ advice: { timeout: 0 } });
    await withIds.subscribe('/r');
    const plain = new RawBayeux(port);
    await plain.open();
    await plain.subscribe('/r');
    const published = await herald.publish('/r', 'x');
    assert.deepEqual((await withIds.connect({ advice: { timeout: 0 } })).json()[1], { channel: '/r', data: 'x', ext: { herald: { id: published.id } } });
    assert.deepEqual((await plain.connect({ advice: { timeout: 0 } })).json()[1], { channel: '/r', data: 'x' });
  });

  test('a subscribe names a resume point and a publish its message id, for sessions that asked for ids', async (t) => {
    const { port, herald } = await startHerald(t, { historySize: 10 });
    const client = new RawBayeux(port);
    await client.handshake({ ext: { herald: { ids: true } } });
    await client.connect({ advice: { timeout: 0 } });
    const subscribe = async (subscription: string) =>
      (await client.send([{ channel: '/meta/subscribe', clientId: client.clientId, subscription }])).json()[0];
    const empty = await subscribe('/empty');
    assert.match(empty.ext.herald.last, /^[0-9a-z]{13}$/);
    const kept = await herald.publish('/kept', 1);
    assert.deepEqual((await subscribe('/kept')).ext, { herald: { last: kept.id } });
    assert.equal((await subscribe('/kept/*')).ext, undefined, 'a pattern has no single position');
    const later = await herald.publish('/empty', 'after');
    assert.ok(later.id > empty.ext.herald.last);
    // Resuming from the position gives exactly what came after it.
    const other = new RawBayeux(port);
    await other.handshake({ ext: { herald: { ids: true } } });
    await other.connect({ advice: { timeout: 0 } });
    const resumed = (await other.send([{ channel: '/meta/subscribe', clientId: other.clientId, subscription: '/empty', ext: { herald: { since: empty.ext.herald.last } } }])).json()[0];
    assert.equal(resumed.ext, undefined, 'no gap');
    assert.deepEqual((await other.connect({ advice: { timeout: 0 } })).json().slice(1).map((m: any) => m.data), ['after']);
    const published = (await client.send([{ channel: '/kept', clientId: client.clientId, data: 2, id: 'p1' }])).json()[0];
    assert.match(published.ext.herald.id, /^[0-9a-z]{13}$/);
    const delivered = (await client.connect({ advice: { timeout: 0 } })).json().slice(1).filter((m: any) => m.channel === '/kept');
    assert.deepEqual(delivered, [{ channel: '/kept', data: 2, ext: { herald: { id: published.ext.herald.id } } }]);
    const plain = new RawBayeux(port);
    await plain.open();
    assert.equal((await plain.send([{ channel: '/kept', clientId: plain.clientId, data: 4 }])).json()[0].ext, undefined);
    assert.equal((await plain.subscribe('/kept')).ext, undefined);
  });

  test('a new session resumes a channel on subscribe: what it missed, in order, once', async (t) => {
    const { port, herald } = await startHerald(t);
    const seen = await herald.publish('/resume', 0);
    for (let i = 1; i <= 3; i++) await herald.publish('/resume', i);
    const client = new RawBayeux(port);
    await client.handshake({ ext: { herald: { ids: true } } });
    await client.connect({ advice: { timeout: 0 } });
    const reply = await (await client.send([{ channel: '/meta/subscribe', clientId: client.clientId, subscription: '/resume', ext: { herald: { since: seen.id } } }])).json()[0];
    assert.equal(reply.successful, true);
    assert.equal(reply.ext, undefined, 'no gap');
    await herald.publish('/resume', 4);
    const got = (await client.connect({ advice: { timeout: 0 } })).json().slice(1);
    assert.deepEqual(got.map((m: any) => m.data), [1, 2, 3, 4]);
  });

  /** An engine whose next history read fails as a Redis out of reach would, after a message lands live meanwhile. */
  class FailingEngine extends MemoryEngine {
    failNext = false;

    override async history(channel: string, query?: HistoryQuery): Promise<HistoryPage> {
      if (!this.failNext) return super.history(channel, query);
      this.failNext = false;
      await this.publish({ channel, data: 'live while the resume failed' });
      throw new HeraldError('HERALD_ERR_ENGINE_UNAVAILABLE', 'cannot history: Redis is unreachable');
    }
  }

  test('a resume whose history cannot be read just now (the engine is out of reach) is a gap: the subscription stays live', async (t) => {
    const engine = new FailingEngine();
    const { port, herald } = await startHerald(t, { engine });
    const seen = await herald.publish('/away', 'seen');
    await herald.publish('/away', 'missed while away');
    const client = new RawBayeux(port);
    await client.handshake({ ext: { herald: { ids: true } } });
    await client.connect({ advice: { timeout: 0 } });
    engine.failNext = true;
    const resumed = (await client.send([{ channel: '/meta/subscribe', clientId: client.clientId, subscription: '/away', ext: { herald: { since: seen.id } } }])).json()[0];
    // A refusal would leave CometD and Faye (which never ask again) unsubscribed without a word.
    assert.equal(resumed.successful, true, JSON.stringify(resumed));
    assert.deepEqual(resumed.ext, { herald: { gap: true } }, 'what it missed cannot be vouched for');
    await herald.publish('/away', 'after');
    const got = (await client.connect({ advice: { timeout: 0 } })).json().slice(1);
    assert.deepEqual(got.map((m: any) => m.data), ['live while the resume failed', 'after']);
    // The same on a connect that resumes: a gap named in its reply, not a failed connect.
    engine.failNext = true;
    const connected = (await client.connect({ advice: { timeout: 0 }, ext: { herald: { since: { '/away': seen.id } } } })).json();
    assert.equal(connected[0].successful, true, JSON.stringify(connected[0]));
    assert.deepEqual(connected[0].ext, { herald: { gaps: ['/away'] } });
  });

  test('reports a gap when history no longer reaches back, or the subscription is a pattern', async (t) => {
    const { port, herald } = await startHerald(t, { historySize: 1 });
    const old = await herald.publish('/short', 1);
    await herald.publish('/short', 2);
    await herald.publish('/short', 3);
    const client = new RawBayeux(port);
    await client.open();
    const subscribe = async (subscription: string) =>
      (await client.send([{ channel: '/meta/subscribe', clientId: client.clientId, subscription, ext: { herald: { since: old.id } } }])).json()[0];
    assert.deepEqual((await subscribe('/short')).ext, { herald: { gap: true } });
    assert.deepEqual((await subscribe('/short/**')).ext, { herald: { gap: true } });
    const got = (await client.connect({ advice: { timeout: 0 } })).json().slice(1);
    assert.deepEqual(got.map((m: any) => m.data), [3], 'what history still held');
  });

  test('a connect resumes the channels it names, without duplicating what is queued', async (t) => {
    const { port, herald } = await startHerald(t);
    const client = new RawBayeux(port);
    await client.handshake({ ext: { herald: { ids: true } } });
    await client.connect({ advice: { timeout: 0 } });
    await client.subscribe(['/a', '/b']);
    const a1 = await herald.publish('/a', 'a1');
    await herald.publish('/a', 'a2');
    await herald.publish('/b', 'b1');
    // The client lost the reply that carried a2 and b1 (say), and says where it is.
    const res = (await client.connect({ ext: { herald: { since: { '/a': a1.id, '/nope': a1.id } } } })).json();
    assert.deepEqual(res[0].ext, { herald: { gaps: ['/nope'] } }, 'a channel it does not subscribe to cannot resume');
    assert.deepEqual(res.slice(1).map((m: any) => m.data), ['a2', 'b1']);
  });

  test('ids ride WebSocket frames too', async (t) => {
    const { port, herald } = await startHerald(t);
    const ws = await RawWs.open(port);
    onCleanup(t, () => ws.close());
    ws.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h', ext: { herald: { ids: true } } }]);
    const { clientId } = await ws.next('handshake', (m) => m.id === 'h');
    ws.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c', advice: { timeout: 0 } }]);
    ws.send([{ channel: '/meta/subscribe', clientId, subscription: '/w', id: 's' }]);
    await ws.next('subscribed', (m) => m.id === 's');
    const published = await herald.publish('/w', 1);
    const delivery = await ws.next('the delivery', (m) => m.channel === '/w');
    assert.deepEqual(delivery.ext, { herald: { id: published.id } });
  });
});
