/**
 * One publish path: every front door (REST, Bayeux, the API) checks a message before the engine
 * stores it, and a publish the engine refused is not remembered as done.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PublishRequest } from '../../src/core/engine.js';
import { HeraldError } from '../../src/core/errors.js';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import type { Message } from '../../src/core/message.js';
import { httpRequest, postJson } from '../helpers/http.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { RawWs } from '../helpers/raw-ws.js';
import { waitFor } from '../helpers/wait.js';

/** A memory engine whose store is out of reach for the next `failures` publishes, as Redis can be. */
class FlakyEngine extends MemoryEngine {
  failures = 0;
  override async publish(request: PublishRequest): Promise<Message> {
    if (this.failures > 0) {
      this.failures--;
      throw new HeraldError('HERALD_ERR_ENGINE_UNAVAILABLE', 'redis is away');
    }
    return super.publish(request);
  }
}

const getJson = (port: number, path: string) => httpRequest(port, { path });

describe('one publish path', () => {
  test('a Bayeux publish retried after 503::engine_unavailable is stored and delivered', async (t) => {
    const engine = new FlakyEngine({ historySize: 10 });
    const { port } = await startHerald(t, { engine });
    const sub = new RawBayeux(port);
    await sub.open();
    await sub.subscribe('/retry');
    const pub = new RawBayeux(port);
    await pub.open();
    const message = { channel: '/retry', clientId: pub.clientId, data: 'once', id: 'p1' };
    engine.failures = 1;
    const [failed] = (await pub.send([message])).json();
    assert.equal(failed.successful, false);
    assert.match(failed.error, /^503:/);
    const [retried] = (await pub.send([message])).json();
    assert.equal(retried.successful, true);
    const history = (await getJson(port, '/history/retry')).json();
    assert.deepEqual(history.messages.map((m: { data: unknown }) => m.data), ['once'], 'the retry was stored');
    const delivered = (await sub.connect({ advice: { timeout: 0 } })).json().slice(1);
    assert.deepEqual(delivered.map((m: { data: unknown }) => m.data), ['once']);
    const [resent] = (await pub.send([message])).json();
    assert.equal(resent.successful, true, 'a resend after success is acknowledged');
    assert.equal((await getJson(port, '/history/retry')).json().messages.length, 1, 'and not stored twice');
  });

  test('the API refuses data that cannot be encoded before anything is stored, and the channel keeps working', async (t) => {
    const { herald, port } = await startHerald(t, { maxMessageBytes: 1024 });
    const sub = new RawBayeux(port);
    await sub.open();
    await sub.subscribe('/a');
    await herald.publish('/a', 'before');
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const [data, code] of [
      [1n, 'HERALD_ERR_INVALID_DATA'],
      [cycle, 'HERALD_ERR_INVALID_DATA'],
      [undefined, 'HERALD_ERR_INVALID_DATA'],
      ['x'.repeat(2000), 'HERALD_ERR_MESSAGE_TOO_LARGE'],
    ] as const) {
      await assert.rejects(herald.publish('/a', data), (error: HeraldError) => error.code === code);
    }
    await assert.rejects(herald.publish('/a/*', 1), (error: HeraldError) => error.code === 'HERALD_ERR_INVALID_CHANNEL');
    await herald.publish('/a', 'after');
    const history = await getJson(port, '/history/a');
    assert.equal(history.status, 200);
    assert.deepEqual(history.json().messages.map((m: { data: unknown }) => m.data), ['before', 'after']);
    const delivered = (await sub.connect({ advice: { timeout: 0 } })).json().slice(1);
    assert.deepEqual(delivered.map((m: { data: unknown }) => m.data), ['before', 'after']);
  });

  test('a held long-poll is answered with the messages around a refused publish', async (t) => {
    const { herald, port } = await startHerald(t);
    const sub = new RawBayeux(port);
    await sub.open();
    await sub.subscribe('/held');
    const held = sub.connect();
    await assert.rejects(herald.publish('/held', 1n));
    await herald.publish('/held', 'ok');
    const delivered = (await held).json().slice(1);
    assert.deepEqual(delivered.map((m: { data: unknown }) => m.data), ['ok']);
  });

  test('a publish writes its data as JSON once: the check, and every recipient’s format, use the same text', async (t) => {
    const { herald, port } = await startHerald(t);
    const sub = new RawBayeux(port);
    await sub.open();
    await sub.subscribe('/once');
    const ws = await RawWs.open(port, '/sub/once');
    t.after(() => ws.close());
    await waitFor('the /sub subscription', async () => {
      await herald.publish('/once', 'probe');
      return ws.frames.length > 0;
    });
    await sub.connect({ advice: { timeout: 0 } });
    ws.frames.length = 0;
    let written = 0;
    const data = { toJSON: () => (written++, { n: 1, text: 'é' }) };
    await herald.publish('/once', data);
    const delivered = (await sub.connect({ advice: { timeout: 0 } })).json().slice(1);
    assert.deepEqual(delivered.map((m: { data: unknown }) => m.data), [{ n: 1, text: 'é' }]);
    assert.deepEqual((await ws.next('the /sub delivery', (m) => m.channel === '/once')).data, { n: 1, text: 'é' });
    assert.equal(written, 1, 'the data was serialised again after the publisher measured it');
  });

  test('REST counts the subscribers a publish reached during its fan-out', async (t) => {
    const { port } = await startHerald(t);
    const subs = [new RawBayeux(port), new RawBayeux(port)];
    for (const sub of subs) {
      await sub.open();
      await sub.subscribe('/count/**');
    }
    const other = new RawBayeux(port);
    await other.open();
    await other.subscribe('/elsewhere');
    const reply = (await postJson(port, '/pub/count/x', { n: 1 })).json();
    assert.equal(reply.subscribers, 2);
    assert.equal((await postJson(port, '/pub/nobody', { n: 1 })).json().subscribers, 0);
  });
});
