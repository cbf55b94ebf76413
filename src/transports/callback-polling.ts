/**
 * @module
 * The `callback-polling` transport (JSONP): long-polling over GET, the reply wrapped in a call to
 * the function named by the `jsonp` parameter (default `jsonpcallback`), for browsers that cannot
 * make cross-origin requests. The name is checked against a strict pattern and never reflected when
 * it fails it; the reply is hardened against MIME sniffing and Rosetta-Flash style tricks.
 */
import type { ServerResponse } from 'node:http';
import { FLOWING_HEADERS, HttpError } from './http.js';

export const JSONP_PARAM = 'jsonp';
export const DEFAULT_JSONP_CALLBACK = 'jsonpcallback';
const CALLBACK_NAME = /^[A-Za-z0-9._$-]{1,64}$/;

/** The callback named by the request; throws a 400 that does not echo a bad name. */
export function jsonpCallback(query: URLSearchParams, param = JSONP_PARAM): string {
  const name = query.get(param) || DEFAULT_JSONP_CALLBACK;
  if (!CALLBACK_NAME.test(name)) throw new HttpError(400, 'invalid jsonp callback name: use 1-64 of A-Z a-z 0-9 . _ $ -');
  return name;
}

/**
 * `/**\/cb([...]);` — we must output valid JavaScript, not merely valid JSON: U+2028 and U+2029 end
 * a line in older JavaScript engines, so they are escaped. The leading comment keeps a reply from
 * starting with attacker-chosen bytes.
 */
export function wrapJsonp(callback: string, json: string): string {
  return `/**/${callback}(${json.replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')});`;
}

export function sendJsonp(res: ServerResponse, callback: string, json: string, headers: Record<string, string | string[]>): void {
  if (res.writableEnded || res.destroyed) return;
  const body = wrapJsonp(callback, json);
  res.writeHead(200, {
    ...headers,
    'Content-Type': 'text/javascript; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    ...FLOWING_HEADERS,
    'Content-Disposition': 'attachment; filename=f.txt',
  });
  res.end(body);
}
