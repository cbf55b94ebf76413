/**
 * Fuzzing a running Herald with WebSocket frames (fast-check): on /bayeux, /cometd and
 * /sub/{channel} (and paths that upgrade to nothing), Bayeux batches, text, binary, text that is
 * not UTF-8, fragments, pings and bursts of frames faster than they are handled through the `ws`
 * client, on a live session or none; and frames
 * written as raw bytes, wrong bits and all (reserved bits, unknown opcodes, unmasked, bad close
 * codes). Bounded by runs and by time. Whatever arrives, Herald must answer the upgrade below 500,
 * never close a socket as an internal error, log no error, raise no unhandled rejection or
 * uncaught exception, still serve a normal round trip, and give back its sessions,
 * subscriptions, sockets and memory once the sessions have expired.
 *
 * Replay a failure with FUZZ_SEED=<seed printed in the output>; FUZZ_RUNS and FUZZ_SECONDS scale
 * the group (defaults: 1500 runs, 9 s). Bayeux messages: fuzz-bayeux.test.ts; HTTP requests:
 * fuzz-http.test.ts.
 */
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { fatal, isBad, withReal, withWs } from '../helpers/fuzz-clients.js';
import { someMessage, weird } from '../helpers/fuzz-messages.js';
import { assertReleased, BUDGET_MS, count, finishCase, fuzz, HANG_MS, REAL, RUNS, SEED, startCase, startFuzzServer, stopFuzzServer, target, warmUpBaseline } from '../helpers/fuzz.js';
import type { MemorySample } from '../helpers/fuzz.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Uint8Array;
}
type WsAction =
  | { kind: 'text'; text: string }
  | { kind: 'json'; value: unknown }
  | { kind: 'binary'; bytes: Uint8Array }
  | { kind: 'badutf8'; bytes: Uint8Array }
  | { kind: 'fragments'; parts: string[] }
  | { kind: 'ping'; bytes: Uint8Array }
  /** The same batch many times without waiting: more frames than a socket may hold unhandled, so reading pauses and resumes. */
  | { kind: 'burst'; value: unknown; times: number };
interface WsCase {
  path: string;
  real: boolean;
  raw: boolean;
  actions: WsAction[];
  frames: Frame[];
}
const wsAction: fc.Arbitrary<WsAction> = fc.oneof(
  fc.record({ kind: fc.constant('json' as const), value: fc.oneof(fc.array(someMessage, { maxLength: 4 }), someMessage, weird) }),
  fc.record({ kind: fc.constant('text' as const), text: fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('[]', '[[]]', '', 'null', '{}', '[1]')) }),
  fc.record({ kind: fc.constant('binary' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ kind: fc.constant('badutf8' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 20 }).map((b) => Uint8Array.from([0xc3, 0x28, ...b])) }),
  fc.record({ kind: fc.constant('fragments' as const), parts: fc.array(fc.string({ maxLength: 20 }), { minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('ping' as const), bytes: fc.uint8Array({ maxLength: 125 }) }),
  fc.record({
    kind: fc.constant('burst' as const),
    value: fc.oneof(fc.constant([{ channel: '/service/slow', clientId: REAL, data: 1 }]), fc.array(someMessage, { maxLength: 3 })),
    times: fc.integer({ min: 9, max: 40 }),
  }),
);
const rawFrame: fc.Arbitrary<Frame> = fc.record({
  fin: fc.boolean(),
  rsv: fc.oneof({ arbitrary: fc.constant(0), weight: 5 }, fc.integer({ min: 1, max: 7 })),
  opcode: fc.oneof({ arbitrary: fc.constantFrom(0, 1, 2, 8, 9, 10), weight: 5 }, fc.integer({ min: 0, max: 15 })),
  masked: fc.oneof({ arbitrary: fc.constant(true), weight: 5 }, fc.constant(false)),
  payload: fc.oneof(
    fc.uint8Array({ maxLength: 140 }),
    fc.array(someMessage, { maxLength: 3 }).map((batch) => new Uint8Array(Buffer.from(JSON.stringify(batch)))),
    fc.constantFrom(new Uint8Array([0x03, 0xe8]), new Uint8Array([0x03]), new Uint8Array([0x0b, 0xb8]), new Uint8Array([0x03, 0xe8, 0xff])),
  ),
});
const wsCase: fc.Arbitrary<WsCase> = fc.record({
  path: fc.constantFrom('/bayeux', '/cometd', '/bayeux/x', '/sub/fuzz/a', '/sub/fuzz/*', '/sub/fuzz/a?since=0', '/sub/fuzz/a?since=bad!', '/sub/meta/x', '/sub/%zz', '/pub/fuzz/a', '/nope'),
  real: fc.boolean(),
  raw: fc.boolean(),
  actions: fc.array(wsAction, { maxLength: 5 }),
  frames: fc.array(rawFrame, { maxLength: 5 }),
});

/** A client frame as bytes, exactly as described (wrong bits and all); the length is always true. */
function encodeFrame(f: Frame): Buffer {
  const length = f.payload.length;
  const head = length < 126 ? Buffer.from([0, length]) : Buffer.from([0, 126, length >> 8, length & 0xff]);
  head[0] = (f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode;
  if (!f.masked) return Buffer.concat([head, f.payload]);
  head[1] = head[1]! | 0x80;
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  return Buffer.concat([head, key, Buffer.from(f.payload.map((byte, i) => byte ^ key[i % 4]!))]);
}

/** Close codes in frames the server sent (unmasked), after the HTTP head. */
function closeCodes(bytes: Buffer): { code: number; reason: string }[] {
  const codes: { code: number; reason: string }[] = [];
  let at = bytes.indexOf('\r\n\r\n') + 4;
  while (at > 3 && at + 2 <= bytes.length) {
    const opcode = bytes[at]! & 0x0f;
    let length = bytes[at + 1]! & 0x7f;
    let start = at + 2;
    if (length === 126) [length, start] = [bytes.readUInt16BE(at + 2), at + 4];
    else if (length === 127) [length, start] = [Number(bytes.readBigUInt64BE(at + 2)), at + 10];
    if (start + length > bytes.length) break;
    if (opcode === 8 && length >= 2) codes.push({ code: bytes.readUInt16BE(start), reason: bytes.subarray(start + 2, start + length).toString() });
    at = start + length;
  }
  return codes;
}

/** Upgrades by hand and writes raw frames, then a probe; resolves with what the server sent. */
async function rawWs(path: string, frames: Frame[]): Promise<{ head: string; codes: { code: number; reason: string }[] }> {
  const { port } = target();
  const socket = connect(port, '127.0.0.1');
  let error: string | undefined;
  socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
  let received = Buffer.alloc(0);
  let ended = false;
  socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  socket.on('close', () => (ended = true));
  try {
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await waitFor('the upgrade answer', () => ended || received.includes('\r\n\r\n'), HANG_MS);
    const head = received.subarray(0, Math.max(0, received.indexOf('\r\n\r\n'))).toString('latin1');
    if (!ended && head.startsWith('HTTP/1.1 101')) {
      for (const f of frames) socket.write(encodeFrame(f));
      const probe = path.startsWith('/sub/') ? { opcode: 9, payload: Buffer.from('probe') } : { opcode: 1, payload: Buffer.from('[{"channel":"/meta/connect","clientId":"nobody","connectionType":"websocket","id":"probe"}]') };
      socket.write(encodeFrame({ fin: true, rsv: 0, masked: true, ...probe }));
      await waitFor('the probe answer or the end of the connection', () => ended || received.includes('probe') || closeCodes(received).length > 0, HANG_MS);
    }
    if (error === 'ECONNREFUSED') throw new Error('the server refused the connection: is it still running?');
    return { head: head.split('\r\n')[0] ?? '', codes: closeCodes(received) };
  } finally {
    socket.destroy();
  }
}

/** The reply to the handshake with id `h` sent on this socket (undefined if the socket closes). */
function handshakeReply(ws: WebSocket): Promise<{ clientId?: string } | undefined> {
  return withTimeout(
    'the handshake reply',
    new Promise((resolve) => {
      const onMessage = (data: WebSocket.RawData) => {
        let found: { id?: unknown; clientId?: string } | undefined;
        try {
          found = ([JSON.parse(data.toString())].flat() as { id?: unknown }[]).find((m) => m?.id === 'h');
        } catch {
          return;
        }
        if (found === undefined) return;
        ws.off('message', onMessage);
        resolve(found);
      };
      ws.on('message', onMessage);
      ws.once('close', () => resolve(undefined));
    }),
    HANG_MS,
  );
}

async function runWsCase(c: WsCase): Promise<void> {
  const before = await startCase();
  const what = JSON.stringify(c, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)).slice(0, 1500);
  if (c.raw) {
    const { head, codes } = await rawWs(c.path, c.frames);
    count(`raw ws ${head.slice(9, 12) || 'closed'} ${codes.map((x) => x.code).join(',')}`);
    if (/^HTTP\/1\.1 5/.test(head)) throw new Error(`upgrade answered ${head} for ${what}`);
    // A server answers a close frame with the same code: those it only echoed say nothing of it.
    const sent = new Set(c.frames.filter((f) => f.opcode === 8 && f.payload.length >= 2).map((f) => (f.payload[0]! << 8) | f.payload[1]!));
    const bad = codes.find((x) => isBad(x.code, x.reason) && !sent.has(x.code));
    if (bad !== undefined) throw new Error(`socket closed ${bad.code} ${bad.reason} after ${what}`);
  } else {
    const bayeux = !c.path.startsWith('/sub/');
    const result = await withWs(
      c.path,
      {},
      async (ws) => {
        let clientId = 'nobody';
        if (c.real && bayeux) {
          ws.send(JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h' }]));
          clientId = (await handshakeReply(ws))?.clientId ?? clientId;
        }
        for (const a of c.actions) {
          if (ws.readyState !== WebSocket.OPEN) break;
          if (a.kind === 'json') ws.send(JSON.stringify(withReal(a.value, clientId)) ?? 'null');
          else if (a.kind === 'text') ws.send(a.text);
          else if (a.kind === 'binary') ws.send(a.bytes, { binary: true });
          else if (a.kind === 'badutf8') ws.send(a.bytes, { binary: false });
          else if (a.kind === 'ping') ws.ping(a.bytes);
          else if (a.kind === 'burst') for (let i = 0; i < a.times; i++) ws.send(JSON.stringify(withReal(a.value, clientId)) ?? 'null');
          else a.parts.forEach((part, i) => ws.send(part, { binary: false, fin: i === a.parts.length - 1 }));
        }
      },
      bayeux ? 'bayeux' : 'ping',
    );
    count(`ws ${result.status ?? result.close?.code ?? 'open'}`);
    if (fatal(result.error)) throw new Error(`${result.error} for ${what}`);
    if (result.status !== undefined && result.status >= 500) throw new Error(`upgrade answered ${result.status} for ${what}`);
    if (result.close !== undefined && isBad(result.close.code, result.close.reason)) throw new Error(`socket closed ${result.close.code} ${result.close.reason} after ${what}`);
  }
  await finishCase(before, what);
}

describe('fuzzing a running Herald with WebSocket frames', { concurrency: false }, () => {
  let baseline: MemorySample;

  before(startFuzzServer);
  after(stopFuzzServer);

  test('warm-up, then a memory baseline once every session has expired', async (t) => {
    baseline = await warmUpBaseline(t, () => fuzz(t, wsCase, runWsCase, { seed: SEED + 102, runs: 30, budgetMs: 3000 }));
  });

  test('random WebSocket frames on /bayeux and /sub/{channel}, through ws and as raw bytes', (t) =>
    fuzz(t, wsCase, runWsCase, { seed: SEED + 2, runs: RUNS, budgetMs: BUDGET_MS }));

  test('afterwards: a normal round trip still works, everything is released, memory is back to baseline', (t) => assertReleased(t, baseline));
});
