/**
 * The messages of one flush leave a Bayeux WebSocket as one frame, `[m1,m2,…]` (split past
 * MAX_BATCH_FRAME_BYTES): the official CometD and Faye clients take every message of such frames,
 * in order — small bursts, and a burst larger than one frame may be.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Herald } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { CometdPeer, cometdTransportOf, FayePeer } from '../helpers/interop.js';
import { waitFor } from '../helpers/wait.js';

/** Ten small messages and three of 30,000 bytes (two frames' worth), published in one tick. */
function burst(herald: Herald, channel: string): Promise<unknown> {
  const small = Array.from({ length: 10 }, (_, i) => herald.publish(channel, { n: i }));
  const large = [10, 11, 12].map((n) => herald.publish(channel, { n, pad: 'x'.repeat(30_000) }));
  return Promise.all([...small, ...large]);
}

const EXPECTED = Array.from({ length: 13 }, (_, i) => i);

describe('a burst gathered into Bayeux frames of several messages', () => {
  test('reaches the official CometD JS client over websocket, every message in order', async (t) => {
    // A write delay gathers the burst, as `--write-delay` does in production.
    const { url, herald } = await startHerald(t, { timeoutMs: 5_000, writeDelayMs: 50 });
    const peer = new CometdPeer(`${url}/cometd`, 'websocket');
    onCleanup(t, () => peer.disconnect());
    await peer.handshake();
    assert.equal(cometdTransportOf(peer), 'websocket');
    const got: number[] = [];
    await peer.subscribe('/gathered', (m) => got.push((m.data as { n: number }).n));
    await waitFor('the connect to be held', () => herald.stats().heldConnects === 1);
    await burst(herald, '/gathered');
    await waitFor('thirteen deliveries', () => got.length === 13);
    assert.deepEqual(got, EXPECTED);
  });

  test('reaches the Faye client over websocket, every message in order', async (t) => {
    const { url, herald } = await startHerald(t, { timeoutMs: 5_000, writeDelayMs: 50 });
    const peer = new FayePeer(`${url}/bayeux`, 'websocket');
    onCleanup(t, () => peer.disconnect());
    const got: number[] = [];
    await peer.subscribe('/gathered', (data: { n: number }) => got.push(data.n));
    await waitFor('Faye on its WebSocket, its connect held', () => peer.connectionType === 'websocket' && herald.stats().webSockets === 1 && herald.stats().heldConnects === 1);
    await burst(herald, '/gathered');
    await waitFor('thirteen deliveries', () => got.length === 13);
    assert.deepEqual(got, EXPECTED);
  });
});
