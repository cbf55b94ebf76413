/**
 * The official CometD client with its AckExtension loses nothing when a connect reply carrying
 * messages is lost: a proxy between them cuts exactly such a reply.
 */
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { CometdPeer } from '../helpers/interop.js';
import type { Received } from '../helpers/interop.js';
import { waitFor } from '../helpers/wait.js';

const { AckExtension } = await import('cometd');

/** Forwards to `port`; cuts the connection instead of answering the first connect reply that carries data. */
async function startLossyProxy(t: { after(fn: () => unknown): void }, port: number) {
  let cut = 0;
  const proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const upstream = request({ host: '127.0.0.1', port, path: req.url, method: req.method, headers: req.headers }, (up) => {
        const body: Buffer[] = [];
        up.on('data', (c: Buffer) => body.push(c));
        up.on('end', () => {
          const text = Buffer.concat(body).toString('utf8');
          if (cut === 0 && text.includes('"/meta/connect"') && text.includes('"data"')) {
            cut++;
            req.socket.destroy();
            return;
          }
          res.writeHead(up.statusCode ?? 502, up.headers);
          res.end(text);
        });
      });
      upstream.on('error', () => res.destroy());
      upstream.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  onCleanup(t, () => proxy.closeAllConnections() ?? proxy.close());
  return { url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/cometd`, cuts: () => cut };
}

test('CometD with the AckExtension gets every message once, in order, across a lost connect reply', async (t) => {
  const { port, herald } = await startHerald(t, { timeoutMs: 5_000 });
  const proxy = await startLossyProxy(t, port);
  const peer = new CometdPeer(proxy.url, 'long-polling');
  peer.client.registerExtension('ack', new AckExtension());
  onCleanup(t, () => peer.disconnect());
  const handshake = await peer.handshake();
  assert.deepEqual(handshake.ext?.ack, true);
  const got: Received[] = [];
  await peer.subscribe('/guaranteed', (m) => got.push(m));
  for (let i = 0; i < 10; i++) await herald.publish('/guaranteed', i);
  await waitFor('every message', () => got.length >= 10, 15_000);
  assert.equal(proxy.cuts(), 1, 'a reply with messages was lost on the way');
  for (let i = 10; i < 15; i++) await herald.publish('/guaranteed', i);
  await waitFor('the later messages', () => got.length >= 15, 15_000);
  assert.deepEqual(got.map((m) => m.data), Array.from({ length: 15 }, (_, i) => i));
});
