/**
 * A body over the limit is answered 413 and the client reads that answer: the server drains what
 * the client is still sending instead of closing under it (which resets the connection, and the
 * client sees EPIPE or ECONNRESET and no status). Every door that reads a body, with and without a
 * declared length, sent by a client that reads only once it has written everything.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { startHerald } from '../helpers/herald.js';
import { withTimeout } from '../helpers/wait.js';

const BODY = Buffer.alloc(10 * 1024 * 1024, 'x');
const DOORS = ['/pub/big', '/sign', '/bayeux'];

interface Outcome {
  readonly head: string;
  readonly error?: string;
}

/**
 * Sends `path` a 10 MiB POST over a raw socket, reading nothing until all of it is written (as a
 * client that sends, then reads, does): what came back, and the error the socket met if any.
 */
function postBig(port: number, path: string, chunked: boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let error: string | undefined;
    socket.pause();
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    socket.on('close', () => resolve({ head: Buffer.concat(chunks).toString('latin1').split('\r\n\r\n')[0]!, ...(error === undefined ? {} : { error }) }));
    const framing = chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${BODY.length}`;
    socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nConnection: close\r\n${framing}\r\n\r\n`);
    const body = chunked ? Buffer.concat([Buffer.from(`${BODY.length.toString(16)}\r\n`), BODY, Buffer.from('\r\n0\r\n\r\n')]) : BODY;
    socket.write(body, () => socket.resume());
  });
}

describe('bodies over --max-body', () => {
  test('every door answers 413 and the client reads it, however it sends the body, every time', async (t) => {
    const { port } = await startHerald(t);
    for (let round = 0; round < 4; round++) {
      for (const path of DOORS) {
        for (const chunked of [false, true]) {
          const outcome = await withTimeout(`the answer to POST ${path}`, postBig(port, path, chunked));
          assert.match(outcome.head, /^HTTP\/1\.1 413 /, `POST ${path} (${chunked ? 'chunked' : 'with a length'}), round ${round}: ${JSON.stringify(outcome)}`);
        }
      }
    }
  });

  test('a small limit is answered the same way, and a client that sends forever is cut', async (t) => {
    const { port } = await startHerald(t, { maxBodyBytes: 1024 });
    for (const path of DOORS) assert.match((await postBig(port, path, true)).head, /^HTTP\/1\.1 413 /, path);
    // A client that never stops sending is read for a while, then cut: the drain is bounded.
    const endless = connect(port, '127.0.0.1');
    t.after(() => endless.destroy());
    let sent = 0;
    endless.resume();
    endless.on('error', () => {});
    const chunk = Buffer.alloc(1024 * 1024, 'z');
    const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
    endless.write('POST /pub/a HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n');
    const pump = () => {
      while (!endless.destroyed && sent < 1024 * frame.length) {
        sent += frame.length;
        if (!endless.write(frame)) return void endless.once('drain', pump);
      }
    };
    pump();
    await withTimeout('the endless sender to be cut', new Promise((resolve) => endless.once('close', resolve)), 30_000);
    assert.ok(sent < 512 * frame.length, `cut after ${sent} bytes`);
  });
});
