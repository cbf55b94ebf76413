/** Raw HTTP for tests: one request per connection, every header and byte visible. */
import { once } from 'node:events';
import { request } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { onCleanup } from './cleanup.js';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** Milliseconds from sending to the end of the response. */
  elapsedMs: number;
  json<T = any>(): T;
}

export interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string | number>;
  body?: string | Buffer;
  signal?: AbortSignal;
}

export function httpRequest(port: number, req: RawRequest): Promise<RawResponse> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const r = request(
      { host: '127.0.0.1', port, method: req.method ?? 'GET', path: req.path, headers: req.headers, agent: false, signal: req.signal },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            elapsedMs: performance.now() - started,
            json: () => JSON.parse(text),
          });
        });
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end(req.body);
  });
}

export function postJson(port: number, path: string, body: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  return httpRequest(port, {
    method: 'POST',
    path,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** A response that stays open (a stream): everything it has sent so far, and the request to cut it. */
export async function openStream(port: number, path: string, headers: Record<string, string>, t: { after(fn: () => unknown): void }) {
  const req = request({ host: '127.0.0.1', port, path, headers, agent: false });
  req.on('error', () => {});
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let text = '';
  res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  res.on('error', () => {});
  onCleanup(t, () => req.destroy());
  return { res, req, text: () => text };
}
