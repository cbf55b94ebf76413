/**
 * @module
 * Who may use the REST API. A backend holding the publish key may do anything; anyone else is
 * judged by the token they carry (or as anonymous) against the channel access policy.
 * The key is compared in constant time (over digests, so the length does not leak either).
 * Without a configured key, only loopback clients carrying no token act as the backend: a safe
 * default for `curl localhost`, never an open door.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AccessPolicy } from '../core/access.js';
import { decideSubscription } from '../core/subscription-guard.js';
import type { RestGate } from '../rest/rest-gate.js';
import type { IncomingMessage } from 'node:http';
import { bearerToken, clientAddress, readCookie, readToken } from '../transports/http.js';

export function createRestGate(key: string | undefined, access: AccessPolicy): RestGate {
  const expected = key === undefined ? undefined : digest(key);
  return async (req, query, action, channel) => {
    const carried = readToken(req, query);
    if (!carried.ok) return { ok: false, status: 403, error: carried.error };
    const token = carried.token;
    if (token === undefined) {
      if (action === 'subscribe') {
        const decision = decideSubscription(access, undefined, undefined, channel);
        return decision.ok
          ? { ok: true, principal: undefined, guard: decision.guard }
          : { ok: false, status: 401, error: `${channel} needs a token: send Authorization: Bearer <token> or ?token= (or, from a same-origin page, the herald_token cookie)` };
      }
      if (expected === undefined) {
        return isLocalRequest(req)
          ? { ok: true, principal: undefined }
          : { ok: false, status: 403, error: `${action === 'manage' ? 'this' : 'publishing'} needs a --publish-key; without one only loopback clients may ${action === 'manage' ? 'do it' : 'publish'}` };
      }
      return { ok: false, status: 401, error: 'missing API key: send Authorization: Bearer <publish key> (or a token that allows publishing)' };
    }
    if (expected !== undefined && sameKey(token, expected)) return { ok: true, principal: undefined };
    const check = await access.verify(token);
    if (!check.ok) {
      if (action !== 'subscribe' && expected !== undefined && check.reason === 'invalid') return { ok: false, status: 403, error: `wrong API key, and not a valid token (${check.message})` };
      // A revoked token is known and refused: sending it again cannot help, unlike a missing or expired one.
      return { ok: false, status: check.reason === 'revoked' ? 403 : 401, error: check.message };
    }
    if (action === 'manage') return { ok: false, status: 403, error: 'only the publish key may do this' };
    const refused = { ok: false, status: 403, error: `this token may not ${action} ${action === 'publish' ? 'on' : 'to'} ${channel}` } as const;
    if (action === 'publish') return access.allows(check.principal, action, channel) ? { ok: true, principal: check.principal } : refused;
    const decision = decideSubscription(access, check.principal, undefined, channel);
    return decision.ok ? { ok: true, principal: check.principal, guard: decision.guard } : refused;
  };
}

/** The cookie the dashboard keeps the admin key in, once given as `?key=` (HttpOnly, this path only). */
export const ADMIN_COOKIE = 'herald_admin';

export type AdminVerdict = { ok: true } | { ok: false; status: 401 | 403; error: string };

/**
 * Who may see `/metrics` and the dashboard: holders of the admin key (`Authorization: Bearer`,
 * `?key=`, or the dashboard's cookie); without a configured key, loopback clients only.
 */
export function createAdminGate(key: string | undefined): (req: IncomingMessage, query: URLSearchParams) => AdminVerdict {
  const expected = key === undefined ? undefined : digest(key);
  return (req, query) => {
    if (expected === undefined) {
      return isLocalRequest(req) ? { ok: true } : { ok: false, status: 403, error: 'this needs an --admin-key; without one only loopback clients may see it' };
    }
    const offered = bearerToken(req) ?? query.get('key') ?? readCookie(req, ADMIN_COOKIE);
    if (offered === undefined || offered === '') return { ok: false, status: 401, error: 'missing admin key: send Authorization: Bearer <admin key> (or ?key= to open the dashboard)' };
    return sameKey(offered, expected) ? { ok: true } : { ok: false, status: 403, error: 'wrong admin key' };
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Constant time, over digests: neither the key nor its length leaks. */
function sameKey(offered: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(offered), expected);
}

/**
 * A loopback peer that also names a loopback Host. The peer alone is not enough: a web page can
 * reach loopback under its own name by DNS rebinding, and its Host header then names that page.
 */
function isLocalRequest(req: IncomingMessage): boolean {
  return isLoopback(clientAddress(req)) && isLoopbackHost(req.headers.host);
}

function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  return name === 'localhost' || name === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));
}
