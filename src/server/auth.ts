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
      return isLoopback(req.socket.remoteAddress)
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

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));
}
