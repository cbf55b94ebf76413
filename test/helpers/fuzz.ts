/**
 * The harness of the fuzz tests (test/security/fuzz-*.test.ts): the Herald under test on a server
 * of its own, what it must never do (log an error, raise an unhandled rejection or uncaught
 * exception, keep a connection the client closed), the bounded property runner, and the memory
 * baseline with the final "everything released" check. Each fuzz file runs in its own process, so
 * this module's state (the server, the tallies) belongs to one file.
 *
 * Replay a failure with FUZZ_SEED=<seed printed in the output>; FUZZ_RUNS and FUZZ_SECONDS scale
 * every group (defaults: 1500 runs, 9 s).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import fc from 'fast-check';
import { MemoryEngine } from '../../src/core/memory-engine.js';
import { Session } from '../../src/core/session.js';
import { createHerald } from '../../src/server/create-herald.js';
import type { Herald } from '../../src/server/create-herald.js';
import type { Logger } from '../../src/server/logger.js';
import { postJson } from './http.js';
import { RawBayeux } from './raw-bayeux.js';
import { RawWs } from './raw-ws.js';
import { waitFor } from './wait.js';

export const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;
export const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);
export const BUDGET_MS = Number(process.env.FUZZ_SECONDS ?? 9) * 1000;
/** History kept by the engine is bounded: 3 messages on each of at most 64 channels. */
const HISTORY_CHANNELS = 64;
/** A request with no response for this long is a hang (held requests end after TIMEOUT_MS). */
export const HANG_MS = 5000;
const TIMEOUT_MS = 150;
const MAX_BODY = 64 * 1024;
/** Stands for the clientId of a real session, swapped in when the case runs. */
export const REAL = '$real';

// ---------------------------------------------------------------------------------------------
// The server under test and what it must never do
// ---------------------------------------------------------------------------------------------

const tally = new Map<string, number>();
/** Counts an outcome; the tallies are shown at the end, as coverage. */
export const count = (key: string) => tally.set(key, (tally.get(key) ?? 0) + 1);
const errorLogs: string[] = [];
/** Unhandled rejections and uncaught exceptions seen while the server ran. */
export const processFaults: string[] = [];
const logger: Logger = {
  // How sessions ended (expired, client, queue_full, …): shown with the outcomes, as coverage.
  debug: (message, fields) => {
    if (message === 'session closed') count(`session closed: ${String(fields?.reason)}`);
  },
  info: () => {},
  warn: () => {},
  error: (message, fields) => errorLogs.push(`${message} ${describeFields(fields)}`),
};

export interface FuzzServer {
  herald: Herald;
  port: number;
  http: Server;
}

/** Herald on a server of the test's own, so the test can count the connections still open. */
let server: FuzzServer | undefined;

/** The running server (startFuzzServer first). */
export function target(): FuzzServer {
  if (server === undefined) throw new Error('the fuzz server is not running: call startFuzzServer() in before()');
  return server;
}

function openConnections(): Promise<number> {
  return new Promise((resolve, reject) => target().http.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}

function describeFields(fields: Record<string, unknown> | undefined): string {
  if (fields === undefined) return '';
  return Object.entries(fields)
    .map(([key, value]) => `${key}=${value instanceof Error ? value.stack : JSON.stringify(value)?.slice(0, 300)}`)
    .join(' ');
}

const onRejection = (reason: unknown) => processFaults.push(`unhandledRejection: ${reason instanceof Error ? reason.stack : String(reason)}`);
const onException = (error: Error) => processFaults.push(`uncaughtException: ${error.stack}`);

/**
 * Starts the Herald under test (short timeouts, a small queue and body limit, a bounded history,
 * two services and an asynchronous extension guarding /fuzz/private/**), and starts recording
 * process-level faults.
 */
export async function startFuzzServer(): Promise<FuzzServer> {
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  const herald = createHerald({
    engine: new MemoryEngine({ historySize: 3, historyMaxChannels: HISTORY_CHANNELS }),
    timeoutMs: TIMEOUT_MS,
    intervalMs: 0,
    maxIntervalMs: 300,
    maxQueue: 50,
    maxBodyBytes: MAX_BODY,
    heartbeatMs: 1000,
    pingIntervalMs: 2000,
    // The fuzzer is a trusted proxy: its forged X-Forwarded-For and Forwarded are walked, not ignored.
    trustedProxies: ['127.0.0.1'],
    logger,
  });
  const http = createServer();
  herald.attach(http);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  server = { herald, http, port: (http.address() as AddressInfo).port };
  server.herald.service('/service/echo', (req) => req.data);
  server.herald.service('/service/slow', async (req) => ({ got: req.data }));
  // An asynchronous incoming extension guarding a channel, as applications write them.
  server.herald.use({
    incoming: async (message) => {
      const ext = message.ext as { auth?: unknown } | undefined;
      if (message.channel === '/meta/subscribe' && JSON.stringify(message.subscription ?? '').includes('/fuzz/private') && ext?.auth !== 'letmein') {
        return { ...message, error: '403::forbidden' };
      }
      return message;
    },
  });
  return server;
}

export async function stopFuzzServer(): Promise<void> {
  await server?.herald.close();
  server?.http.close();
  process.off('unhandledRejection', onRejection);
  process.off('uncaughtException', onException);
}

export interface CaseStart {
  logs: number;
  faults: number;
  connections: number;
}

export async function startCase(): Promise<CaseStart> {
  return { logs: errorLogs.length, faults: processFaults.length, connections: await openConnections() };
}

/**
 * Throws, naming the case, when the run left a connection open on the server (every client socket
 * is closed by now), an error log, or a process-level fault behind.
 */
export async function finishCase(before: CaseStart, what: string): Promise<void> {
  await waitFor('the server to close every connection of the case', async () => (await openConnections()) <= before.connections, 1000).catch(async () => {
    throw new Error(`the server still holds ${(await openConnections()) - before.connections} connection(s) the client closed, after ${what}`);
  });
  const { logs: logsBefore, faults: faultsBefore } = before;
  if (errorLogs.length > logsBefore) throw new Error(`server logged an error after ${what}:\n${errorLogs.slice(logsBefore).join('\n')}`);
  if (processFaults.length > faultsBefore) throw new Error(`process fault after ${what}:\n${processFaults.slice(faultsBefore).join('\n')}`);
}

// ---------------------------------------------------------------------------------------------
// The property runner
// ---------------------------------------------------------------------------------------------

/** Extra time a failing property may spend shrinking its counterexample, after its budget. */
const SHRINK_MS = 20_000;

/**
 * Checks `run` on at most `runs` generated cases and for at most `budgetMs`: once the budget is
 * spent, the remaining runs pass without running. A failure is still shrunk (for up to SHRINK_MS),
 * so the report names a small case; fast-check prints its seed and path for replay.
 */
export async function fuzz<T>(t: { diagnostic(message: string): void }, arbitrary: fc.Arbitrary<T>, run: (c: T) => Promise<void>, o: { seed: number; runs: number; budgetMs: number }): Promise<void> {
  const deadline = Date.now() + o.budgetMs;
  const started = Date.now();
  let executed = 0;
  let failing = false;
  await fc.assert(
    fc.asyncProperty(arbitrary, async (c) => {
      if (!failing && Date.now() > deadline) return;
      executed++;
      try {
        await run(c);
      } catch (error) {
        failing = true;
        throw error;
      }
    }),
    {
      seed: o.seed,
      numRuns: o.runs,
      includeErrorInReport: true,
      plugins: [fc.timeout(HANG_MS * 2), fc.interruptAfterTimeLimit(o.budgetMs + SHRINK_MS)],
    },
  );
  t.diagnostic(`${executed} cases in ${Date.now() - started} ms`);
}

// ---------------------------------------------------------------------------------------------
// Memory, and what must hold afterwards
// ---------------------------------------------------------------------------------------------

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

export interface MemorySample {
  heapUsed: number;
  /** Session objects alive (closed or not): a closed session something still holds is a leak. */
  sessions: number;
}

async function settledMemory(): Promise<MemorySample> {
  // Pushes every fuzzed channel's history out of the engine (it keeps HISTORY_CHANNELS channels):
  // retained by design, and bounded, so it is not what this measures.
  for (let i = 0; i < HISTORY_CHANNELS; i++) await target().herald.publish(`/flush/${i}`, i);
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const sessions = typeof v8.queryObjects === 'function' ? (v8.queryObjects(Session, { format: 'count' }) as number) : 0;
  return { heapUsed: process.memoryUsage().heapUsed, sessions };
}

async function allSessionsGone(): Promise<void> {
  await waitFor(
    'every session to expire and every socket and subscription to be released',
    () => {
      const s = target().herald.stats();
      return s.sessions === 0 && s.heldConnects === 0 && s.patterns === 0 && s.webSockets === 0 && openConnections().then((n) => n === 0);
    },
    10_000,
  ).catch(async (error: Error) => {
    throw new Error(`${error.message}: ${JSON.stringify(target().herald.stats())}, open connections ${await openConnections()}`);
  });
}

/**
 * A normal round trip: long-polling (handshake, subscribe, a publish from another session,
 * delivered), then WebSocket (handshake, subscribe, a REST publish delivered).
 */
async function roundTrip(): Promise<void> {
  const { port } = target();
  const reader = new RawBayeux(port);
  await reader.open();
  assert.equal((await reader.subscribe('/roundtrip')).successful, true);
  const writer = new RawBayeux(port);
  await writer.open();
  assert.equal((await writer.publish('/roundtrip', { n: 1 }))[0].successful, true);
  const delivered = (await reader.connect()).json();
  assert.ok(delivered.some((m: any) => m.channel === '/roundtrip' && m.data?.n === 1), `delivered: ${JSON.stringify(delivered)}`);
  const ws = await RawWs.open(port);
  try {
    ws.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h' }]);
    const { clientId } = await ws.next('handshake reply', (m) => m.id === 'h');
    ws.send([{ channel: '/meta/subscribe', clientId, subscription: '/roundtrip', id: 's' }]);
    assert.equal((await ws.next('subscribe reply', (m) => m.id === 's')).successful, true);
    assert.equal((await postJson(port, '/pub/roundtrip', { n: 2 })).status, 200);
    await ws.next('the REST publish', (m) => m.channel === '/roundtrip' && m.data?.n === 2);
  } finally {
    ws.close();
  }
}

/**
 * The warm-up: `warm` runs a few cases of the file's group, then a normal round trip runs (the
 * code the final check takes is loaded too); once every session has expired, the memory baseline.
 */
export async function warmUpBaseline(t: { diagnostic(message: string): void }, warm: () => Promise<void>): Promise<MemorySample> {
  t.diagnostic(`seed ${SEED} (replay with FUZZ_SEED=${SEED})`);
  await warm();
  await roundTrip();
  await allSessionsGone();
  const baseline = await settledMemory();
  t.diagnostic(`baseline: heapUsed ${(baseline.heapUsed / 2 ** 20).toFixed(1)} MB, Session objects ${baseline.sessions}`);
  return baseline;
}

/**
 * After the fuzzing: a normal round trip still works; once the sessions have expired, every
 * session, held connect, subscription, WebSocket and connection is released, no Session object is
 * left alive, the heap is back within 6 MB of the baseline, and nothing logged an error or faulted.
 */
export async function assertReleased(t: { diagnostic(message: string): void }, baseline: MemorySample): Promise<void> {
  t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries([...tally].sort()))}`);
  await roundTrip();
  await allSessionsGone();
  const final = await settledMemory();
  const growth = final.heapUsed - baseline.heapUsed;
  t.diagnostic(`after: heapUsed ${(final.heapUsed / 2 ** 20).toFixed(1)} MB (${growth >= 0 ? '+' : ''}${(growth / 2 ** 20).toFixed(2)} MB), Session objects ${final.sessions}`);
  assert.ok(final.sessions <= baseline.sessions, `Session objects still alive after expiry: ${final.sessions} (baseline ${baseline.sessions})`);
  assert.ok(growth < 6 * 2 ** 20, `heap grew by ${(growth / 2 ** 20).toFixed(1)} MB over the baseline`);
  assert.equal(errorLogs.length, 0, `the server logged errors:\n${errorLogs.slice(0, 3).join('\n')}`);
  assert.equal(processFaults.length, 0, `unhandled rejections or uncaught exceptions:\n${processFaults.slice(0, 3).join('\n')}`);
}
