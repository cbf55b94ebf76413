/**
 * How the fuzz tests (test/security/fuzz-*.test.ts) talk to the server under test: every request
 * ends (a hang or a process fault is reported as such, not waited out), every socket is closed,
 * and each helper reports what came back rather than throwing on it.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import WebSocket from 'ws';
import { HANG_MS, processFaults, REAL, target } from './fuzz.js';
import { postJson } from './http.js';
import { waitFor, withTimeout } from './wait.js';

export interface Answer {
  status: number;
  headers?: IncomingHttpHeaders;
  body?: string;
  /** A client-side error (reset, refused upgrade): acceptable, counted. */
  error?: string;
}

export interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array | undefined;
}

/** One request on its own connection; streams are cut shortly after their headers arrive. */
export function fire(req: Req, readMs = 100): Promise<Answer> {
  return new Promise((resolve) => {
    let r: ReturnType<typeof request>;
    try {
      r = request({ host: '127.0.0.1', port: target().port, method: req.method, path: req.path, headers: req.headers, agent: false });
    } catch (error) {
      // Node refused to build the request (an invalid header or path): nothing reached the server.
      resolve({ status: 0, error: `client: ${(error as Error).message}` });
      return;
    }
    let done = false;
    const finish = (answer: Answer) => {
      if (done) return;
      done = true;
      clearTimeout(hang);
      clearInterval(watch);
      r.destroy();
      resolve(answer);
    };
    const hang = setTimeout(() => finish({ status: 0, error: `HANG: no response within ${HANG_MS} ms` }), HANG_MS);
    // A request whose handling threw out of the server gets no answer: report it now, not at HANG_MS.
    const faults = processFaults.length;
    const watch = setInterval(() => {
      if (processFaults.length > faults) finish({ status: 0, error: `FAULT: ${processFaults[faults]}` });
    }, 10);
    r.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < 2048) chunks.push(chunk);
        size += chunk.length;
      });
      const answer = () => ({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8').slice(0, 2048) });
      const cut = setTimeout(() => finish(answer()), readMs);
      res.on('end', () => {
        clearTimeout(cut);
        finish(answer());
      });
      res.on('error', () => {});
    });
    r.on('error', (error: NodeJS.ErrnoException) => finish({ status: 0, error: error.code ?? error.message }));
    r.on('upgrade', (res, socket) => {
      socket.destroy();
      finish({ status: res.statusCode ?? 0 });
    });
    r.end(req.body);
  });
}

/** A real session (handshake over HTTP); its cookie comes along so the browser's rules apply. */
export async function realSession(): Promise<{ clientId: string; cookie: string }> {
  const res = await postJson(target().port, '/bayeux', [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling', 'websocket', 'eventsource'] }]);
  const [reply] = res.json();
  assert.equal(reply.successful, true, `a normal handshake still works: ${res.text}`);
  return { clientId: reply.clientId, cookie: res.headers['set-cookie']?.[0]?.split(';')[0] ?? '' };
}

/** The value with every REAL placeholder replaced by the real clientId. */
export function withReal(value: unknown, clientId: string): unknown {
  if (clientId === REAL) return value;
  if (value === REAL) return clientId;
  if (Array.isArray(value)) return value.map((v) => withReal(v, clientId));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withReal(v, clientId)]));
  return value;
}


/** Percent-encodes every byte outside the unreserved set (lone surrogates become U+FFFD). */
export function pct(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) out += /[A-Za-z0-9\-._~]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).padStart(2, '0').toUpperCase()}`;
  return out;
}

/** A client-side error that means the server hung or is gone (others, like a reset after a refusal, are fine). */
export function fatal(error: string | undefined): boolean {
  return error !== undefined && (error.startsWith('HANG') || error.startsWith('FAULT') || error === 'ECONNREFUSED');
}

export function isBad(code: number, reason: string): boolean {
  // 1011 is "internal error"; Herald itself closes with 1008 "internal error" when a frame's handling throws.
  return code === 1011 || /internal/i.test(reason);
}

export interface WsResult {
  status?: number;
  /** The server refused or reset the TCP connection. */
  error?: string;
  close?: { code: number; reason: string };
}

/**
 * Opens a `ws` client, lets `act` send, then proves the socket is still served (a probe reply or
 * pong, or a close from the server), closes it, and reports how it ended.
 */
export async function withWs(path: string, headers: Record<string, string>, act: (ws: WebSocket) => void | Promise<void>, probe: 'bayeux' | 'ping'): Promise<WsResult> {
  const ws = new WebSocket(`ws://127.0.0.1:${target().port}${path}`, { headers, maxPayload: 0 });
  const result: WsResult = {};
  let probed = false;
  ws.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'ECONNREFUSED') result.error = error.code;
  });
  ws.on('message', (data) => {
    if (data.toString().includes('"probe"')) probed = true;
  });
  ws.on('pong', (data) => {
    if (data.toString() === 'probe') probed = true;
  });
  const closed = new Promise<void>((resolve) => ws.once('close', (code, reason) => ((result.close ??= { code, reason: reason.toString() }), resolve())));
  const opened = await withTimeout(
    'the WebSocket to open or be refused',
    new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(true));
      ws.once('unexpected-response', (_req, res) => {
        result.status = res.statusCode;
        res.resume();
        ws.terminate();
        resolve(false);
      });
      ws.once('close', () => resolve(false));
    }),
    HANG_MS,
  );
  try {
    if (!opened) return result;
    await act(ws);
    if (ws.readyState === WebSocket.OPEN) {
      if (probe === 'bayeux') ws.send('[{"channel":"/meta/connect","clientId":"nobody","connectionType":"websocket","id":"probe"}]');
      else ws.ping('probe');
    }
    await waitFor('the probe answer or a close from the server', () => probed || result.close !== undefined, HANG_MS);
    if (result.close === undefined) {
      ws.close(1000);
      await withTimeout('the close handshake', closed, HANG_MS);
      // Our own close, echoed: only a code the server chose tells anything.
      if ((result.close as WsResult['close'])?.code === 1000) result.close = undefined;
    }
    return result;
  } finally {
    ws.terminate();
  }
}

/**
 * The oracle for an HTTP door under fuzz: never a 5xx or a broken connection, only a status from
 * `allowed` (0: no answer in time), and every refusal names its problem (`{"error": "…"}`).
 * Counts each status in `outcomes`.
 */
export function judgeAnswer(answer: Answer, what: string, method: string, allowed: ReadonlySet<number>, outcomes: Map<number, number>): void {
  outcomes.set(answer.status, (outcomes.get(answer.status) ?? 0) + 1);
  if (answer.status >= 500 || fatal(answer.error)) throw new Error(`HTTP ${answer.status || answer.error} for ${what}: ${answer.body}`);
  if (answer.status !== 0 && !allowed.has(answer.status)) throw new Error(`unexpected HTTP ${answer.status} for ${what}: ${answer.body}`);
  if (answer.status >= 400 && method !== 'HEAD' && answer.body !== undefined && answer.body !== '' && !/"error":"[^"]+/.test(answer.body)) {
    throw new Error(`a refusal that names nothing for ${what}: ${answer.body}`);
  }
}
