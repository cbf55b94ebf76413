/**
 * Writes straight to a socket's handle (transports/socket-write.ts) keep the stream's promises:
 * every byte in the order written, mixed with the stream's own writes, and what the kernel did not
 * take is counted so a reader that stops reading is still seen.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { createServer, connect } from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { bufferedBytes, directBytesPending, directWritesAvailable, writeToSocket } from '../../src/transports/socket-write.js';
import { onCleanup } from '../helpers/cleanup.js';
import { waitFor } from '../helpers/wait.js';

/** A connected pair on loopback: the server's side (written to) and the client's (read from, paused). */
async function socketPair(t: TestContext): Promise<{ server: Socket; client: Socket }> {
  const listener = createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const client = connect((listener.address() as { port: number }).port, '127.0.0.1');
  client.pause();
  const [server] = (await once(listener, 'connection')) as [Socket];
  onCleanup(t, () => {
    client.destroy();
    server.destroy();
    listener.close();
  });
  return { server, client };
}

test('this Node offers the direct path (else every write takes socket.write and these tests prove nothing new)', () => {
  assert.equal(directWritesAvailable, process.env.HERALD_DIRECT_WRITES !== 'off');
});

test('a reader that stops reading: direct and stream writes interleaved arrive whole and in order, and what waits is counted', async (t) => {
  const { server, client } = await socketPair(t);
  const chunk = (n: number) => Buffer.from(`${String(n).padStart(8, '0')}${'x'.repeat(16_376)}`);
  const count = 400; // 6.4 MB: far past what loopback's kernel buffers hold
  for (let n = 0; n < count; n++) {
    if (n % 5 === 4) server.write(chunk(n));
    else writeToSocket(server, chunk(n));
  }
  assert.ok(bufferedBytes(server) > 1_000_000, `the bytes the kernel did not take are counted (${bufferedBytes(server)})`);
  if (directWritesAvailable) assert.ok(directBytesPending(server) > 0, 'direct writes left with libuv are counted');
  const received: Buffer[] = [];
  let length = 0;
  client.on('data', (data: Buffer) => {
    received.push(data);
    length += data.length;
  });
  client.resume();
  await waitFor('every byte', () => length === count * 16_384);
  const all = Buffer.concat(received);
  for (let n = 0; n < count; n++) assert.equal(all.subarray(n * 16_384, n * 16_384 + 8).toString(), String(n).padStart(8, '0'), `chunk ${n} in place`);
  await waitFor('nothing left waiting', () => bufferedBytes(server) === 0 && directBytesPending(server) === 0);
});

test('a write to a connection the peer has reset ends the socket instead of throwing', async (t) => {
  const { server, client } = await socketPair(t);
  server.on('error', () => {});
  const closed = new Promise((resolve) => server.once('close', resolve));
  client.resetAndDestroy();
  // The kernel may take bytes until the reset has arrived; then it refuses them.
  await waitFor('the socket to end', () => {
    writeToSocket(server, Buffer.alloc(1024));
    return server.destroyed;
  });
  await closed;
  assert.equal(server.destroyed, true);
});
