/**
 * A real HTTP backend on 127.0.0.1 for Herald's decision hooks: it records every call and answers
 * as the test says — JSON, any status, raw bytes, or never (a hang the test may release).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { onCleanup } from './cleanup.js';

export interface HookCall {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: any;
  /** The body as received (to check a signature over). */
  readonly raw: string;
}

/** What the backend answers: JSON (status 200 unless given), raw text, or a hang; with headers of its own if given. */
export type HookAnswer = { status?: number; json?: unknown; raw?: string; hang?: true; headers?: Record<string, string> };

export interface HookBackend {
  readonly url: string;
  readonly calls: HookCall[];
  /** Calls answered or hanging now. */
  inFlight(): number;
  /** The most calls in flight at once so far. */
  readonly peak: { value: number };
  /** Sets how the next calls are answered. */
  answer(behave: (call: HookCall) => HookAnswer): void;
  /** Answers every hanging call with `answer`. */
  release(answer: HookAnswer): void;
}

export async function startHookBackend(t: { after(fn: () => unknown): void }, behave: (call: HookCall) => HookAnswer = () => ({ json: { allow: true } })): Promise<HookBackend> {
  const calls: HookCall[] = [];
  const hanging: ServerResponse[] = [];
  const peak = { value: 0 };
  let active = 0;
  const reply = (res: ServerResponse, answer: HookAnswer) => {
    active--;
    const headers = { 'Content-Type': 'application/json', ...answer.headers };
    res.writeHead(answer.status ?? 200, headers).end(answer.raw ?? JSON.stringify(answer.json ?? {}));
  };
  const server = createServer((req, res) => {
    active++;
    peak.value = Math.max(peak.value, active);
    res.on('close', () => {
      if (!res.writableEnded) active--;
    });
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const call = { path: req.url ?? '/', headers: req.headers, body: text === '' ? undefined : JSON.parse(text), raw: text };
      calls.push(call);
      const answer = behave(call);
      if (answer.hang === true) hanging.push(res);
      else reply(res, answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  onCleanup(t, () => {
    server.closeAllConnections();
    server.close();
  });
  return {
    url,
    calls,
    peak,
    inFlight: () => active,
    answer(next) {
      behave = next;
    },
    release(answer) {
      for (const res of hanging.splice(0)) if (!res.destroyed) reply(res, answer);
    },
  };
}

/** A URL where nothing listens: connections are refused. */
export async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}/hook`;
}

/**
 * The README's verification of a webhook request: `Herald-Signature: t=…,v1=…` is the HMAC-SHA256
 * of `<t>.<raw body>` keyed with `secret`, compared in constant time, `t` within 5 minutes.
 */
export function verifiedWebhook(call: HookCall, secret: string): boolean {
  const [t, v1] = String(call.headers['herald-signature']).split(',').map((part) => part.slice(part.indexOf('=') + 1)) as [string, string];
  const expected = createHmac('sha256', secret).update(`${t}.${call.raw}`).digest('hex');
  return v1.length === expected.length && timingSafeEqual(Buffer.from(v1), Buffer.from(expected)) && Math.abs(Date.now() / 1000 - Number(t)) < 300;
}
