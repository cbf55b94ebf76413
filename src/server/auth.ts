/**
 * @module
 * The publish API key. Compared in constant time (over digests, so the length does not leak
 * either). Without a configured key, only loopback clients may publish: a safe default for
 * `curl localhost`, never an open door.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export type AuthResult = { ok: true } | { ok: false; status: 401 | 403; error: string };

export function createPublishAuth(key: string | undefined): (req: IncomingMessage) => AuthResult {
  const expected = key === undefined ? undefined : digest(key);
  return (req) => {
    if (expected === undefined) {
      // A loopback peer is not enough: a web page can reach loopback under its own name by DNS
      // rebinding. The Host header then names that page's host, not a loopback one.
      return isLoopback(req.socket.remoteAddress) && isLoopbackHost(req.headers.host)
        ? { ok: true }
        : { ok: false, status: 403, error: 'publishing needs a --publish-key; without one only loopback clients may publish' };
    }
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) return { ok: false, status: 401, error: 'missing API key: send Authorization: Bearer <publish key>' };
    if (!timingSafeEqual(digest(match[1]!), expected)) return { ok: false, status: 403, error: 'wrong API key' };
    return { ok: true };
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  return name === 'localhost' || name === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));
}
