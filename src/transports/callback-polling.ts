/**
 * @module
 * The `callback-polling` transport (JSONP): long-polling over GET, the reply wrapped in a call to
 * the function named by the `jsonp` parameter (default `jsonpcallback`), for browsers that cannot
 * make cross-origin requests. The name is checked by `callbackName` — the one check every door
 * that writes a callback name uses (Bayeux JSONP, REST JSONP, the REST forever iframe) — and never
 * reflected when it fails it; the reply is hardened against MIME sniffing and Rosetta-Flash style
 * tricks.
 */
import type { ServerResponse } from 'node:http';
import { FLOWING_HEADERS, HttpError, sendReply } from './http.js';

export const JSONP_PARAM = 'jsonp';
export const DEFAULT_JSONP_CALLBACK = 'jsonpcallback';
export const MAX_CALLBACK_LENGTH = 64;

/** A name that passed `callbackName`: the only kind the JSONP and iframe writers take. */
export type CallbackName = string & { readonly __brand: 'CallbackName' };

/** `a`, `a.b`, `$_.x1`: property accesses only — no calls, operators, brackets or escapes. */
const DOTTED_IDENTIFIER = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$/;

/**
 * Parts a name may not have: JavaScript's reserved words (they cannot be called as a name), and
 * the names that reach the Function constructor or turn a string into code (`constructor`,
 * `eval`, …): Herald's origin must not call them on a framing page's behalf.
 */
const FORBIDDEN_PARTS = new Set([
  'await', 'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do', 'else', 'enum',
  'export', 'extends', 'false', 'finally', 'for', 'function', 'if', 'implements', 'import', 'in', 'instanceof',
  'interface', 'let', 'new', 'null', 'package', 'private', 'protected', 'public', 'return', 'static', 'super',
  'switch', 'this', 'throw', 'true', 'try', 'typeof', 'var', 'void', 'while', 'with', 'yield', 'arguments',
  'constructor', 'prototype', '__proto__', 'eval', 'Function', 'setTimeout', 'setInterval',
]);

/** `text` as a callback name, if it is a safe one: a dotted identifier, bounded, without forbidden parts. */
export function callbackName(text: string): CallbackName | undefined {
  if (text.length > MAX_CALLBACK_LENGTH || !DOTTED_IDENTIFIER.test(text)) return undefined;
  return text.split('.').some((part) => FORBIDDEN_PARTS.has(part)) ? undefined : (text as CallbackName);
}

/** The callback named by the request's `param` (empty or absent: `fallback`); throws a 400 that does not echo a bad name. */
export function jsonpCallback(query: URLSearchParams, param = JSONP_PARAM, fallback = DEFAULT_JSONP_CALLBACK): CallbackName {
  const name = callbackName(query.get(param) || fallback);
  if (name === undefined) {
    throw new HttpError(400, `invalid callback name in ?${param}=: use a dotted JavaScript identifier (like app.onMessage) of at most ${MAX_CALLBACK_LENGTH} characters, without reserved words`);
  }
  return name;
}

/**
 * `/**\/cb([...]);` — we must output valid JavaScript, not merely valid JSON: U+2028 and U+2029 end
 * a line in older JavaScript engines, so they are escaped. The leading comment keeps a reply from
 * starting with attacker-chosen bytes. `extra` (JSON) goes as further arguments.
 */
export function wrapJsonp(callback: CallbackName, json: string, ...extra: string[]): string {
  const args = [json, ...extra].join(',');
  return `/**/${callback}(${args.replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')});`;
}

export function sendJsonp(res: ServerResponse, callback: CallbackName, json: string, headers: Record<string, string | string[]>, ...extra: string[]): void {
  const reply = jsonpReply(callback, json, headers, ...extra);
  sendReply(res, 200, reply.body, reply.headers);
}

/** A JSONP reply's body and headers (after `headers`, in the order they are written). */
export function jsonpReply(callback: CallbackName, json: string, headers: Readonly<Record<string, string | string[]>>, ...extra: string[]): { body: string; headers: Record<string, string | string[] | number> } {
  const body = wrapJsonp(callback, json, ...extra);
  return {
    body,
    headers: {
      ...headers,
      'Content-Type': 'text/javascript; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      ...FLOWING_HEADERS,
      'Content-Disposition': 'attachment; filename=f.txt',
    },
  };
}
