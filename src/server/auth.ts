/**
 * @module
 * Who may use the REST API. A backend holding the publish key may do anything; anyone else is
 * judged by the token they carry (or as anonymous) against the channel access policy, and where
 * its rules say `hook`, by the application's backend (core/hooks.ts).
 * The key is compared in constant time (over digests, so the length does not leak either).
 * Without a configured key, only loopback clients carrying no token act as the backend: a safe
 * default for `curl localhost`, never an open door.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AccessPolicy, Action, Principal } from '../core/access.js';
import { hookCredentials, NO_HOOKS, withHookSubject } from '../core/hooks.js';
import type { DecisionHooks, HookDecision, HookKind, HookRequest } from '../core/hooks.js';
import { decideSubscription } from '../core/subscription-guard.js';
import type { DataReview, RestGate, RestRefusal, RestVerdict } from '../rest/rest-gate.js';
import type { IncomingMessage } from 'node:http';
import { bearerToken, clientAddress, readCookie, readToken } from '../transports/http.js';

export function createRestGate(key: string | undefined, access: AccessPolicy, hooks: DecisionHooks = NO_HOOKS): RestGate {
  const expected = key === undefined ? undefined : digest(key);
  return async (req, query, action, channel) => {
    const carried = readToken(req, query);
    if (!carried.ok) return { ok: false, status: 403, error: carried.error };
    const token = carried.token;
    // Where the rules leave it to the backend's hook, the hook decides what they do not allow outright.
    const hooked = action !== 'manage' && hooks.has(action) && access.hooked(action, channel);
    const ask = (principal: Principal | undefined) => askRestHook(hooks, req, query, action as Action, channel, principal);
    if (token === undefined) {
      if (action === 'subscribe') {
        const decision = decideSubscription(access, undefined, undefined, channel);
        if (hooked && !(decision.ok && decision.guard === undefined)) {
          // If the backend does not allow the whole pattern, what the rules allow of it still stands.
          const verdict = await ask(undefined);
          if (verdict.ok || !decision.ok) return verdict;
        }
        return decision.ok
          ? { ok: true, principal: undefined, guard: decision.guard }
          : { ok: false, status: 401, error: `${channel} needs a token: send Authorization: Bearer <token> or ?token= (or, from a same-origin page, the herald_token cookie)` };
      }
      if (expected === undefined) {
        if (isLocalRequest(req)) return { ok: true, principal: undefined };
        if (hooked) return ask(undefined);
        return { ok: false, status: 403, error: `${action === 'manage' ? 'this' : 'publishing'} needs a --publish-key; without one only loopback clients may ${action === 'manage' ? 'do it' : 'publish'} (not web pages of other origins)` };
      }
      if (hooked) return ask(undefined);
      return { ok: false, status: 401, error: 'missing API key: send Authorization: Bearer <publish key> (or a token that allows publishing)' };
    }
    if (expected !== undefined && sameKey(token, expected)) return { ok: true, principal: undefined };
    const check = await access.verify(token);
    if (!check.ok) {
      // A credential that is not a token of Herald's may be the backend's own: its hook judges it.
      if (hooked && check.reason === 'invalid') return ask(undefined);
      if (action !== 'subscribe' && expected !== undefined && check.reason === 'invalid') return { ok: false, status: 403, error: `wrong API key, and not a valid token (${check.message})` };
      // A revoked token is known and refused: sending it again cannot help, unlike a missing or expired one.
      return { ok: false, status: check.reason === 'revoked' ? 403 : 401, error: check.message };
    }
    if (action === 'manage') return { ok: false, status: 403, error: 'only the publish key may do this' };
    const refused = { ok: false, status: 403, error: `this token may not ${action} ${action === 'publish' ? 'on' : 'to'} ${channel}` } as const;
    if (action === 'publish') {
      if (access.allows(check.principal, action, channel)) return { ok: true, principal: check.principal };
      return hooked ? ask(check.principal) : refused;
    }
    const decision = decideSubscription(access, check.principal, undefined, channel);
    if (hooked && !(decision.ok && decision.guard === undefined)) {
      const verdict = await ask(check.principal);
      if (verdict.ok || !decision.ok) return verdict;
    }
    return decision.ok ? { ok: true, principal: check.principal, guard: decision.guard } : refused;
  };
}

/**
 * The verdict of the backend's hook on a REST request: for a subscription, asked now (the stream
 * acts as the subject it names); for a publish, a review the publisher asks once it has the data.
 */
async function askRestHook(hooks: DecisionHooks, req: IncomingMessage, query: URLSearchParams, action: Action, channel: string, principal: Principal | undefined): Promise<RestVerdict> {
  const request = (data?: unknown): HookRequest => ({
    credentials: hookCredentials(req.headers),
    channel,
    transport: restTransport(req, query, action),
    address: clientAddress(req),
    ...(action === 'publish' ? { data } : {}),
    ...(principal?.subject === undefined ? {} : { sub: principal.subject }),
  });
  if (action === 'publish') {
    const review = async (data: unknown): Promise<DataReview> => {
      const answer = await hooks.ask('publish', request(data));
      if (!answer.allow) return hookRefusal(answer, 'publish');
      return { ok: true, data: answer.replace === undefined ? data : answer.replace.data };
    };
    return { ok: true, principal, review };
  }
  const answer = await hooks.ask('subscribe', request());
  return answer.allow ? { ok: true, principal: withHookSubject(principal, answer) } : hookRefusal(answer, 'subscribe');
}

function hookRefusal(answer: HookDecision & { allow: false }, kind: HookKind): RestRefusal {
  return answer.unavailable
    ? { ok: false, status: 503, error: `${answer.reason}: try again in a moment (hook_unavailable)` }
    : { ok: false, status: 403, error: `the ${kind} hook refused: ${answer.reason} (hook_denied)` };
}

/** How a REST request is carried, as the hooks are told (and as sessions name it). */
function restTransport(req: IncomingMessage, query: URLSearchParams, action: Action): string {
  if (action === 'publish') return 'rest-publish';
  if (req.headers.upgrade?.toLowerCase() === 'websocket') return 'rest-websocket';
  if (req.headers.accept?.includes('text/event-stream') === true) return 'rest-sse';
  const transport = query.get('transport');
  return transport === null ? 'rest-long-poll' : `rest-${transport.slice(0, 20)}`;
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
    const offered = bearerToken(req) ?? query.get('key') ?? adminCookie(req);
    if (offered === undefined || offered === '') return { ok: false, status: 401, error: 'missing admin key: send Authorization: Bearer <admin key> (or ?key= to open the dashboard)' };
    return sameKey(offered, expected) ? { ok: true } : { ok: false, status: 403, error: 'wrong admin key' };
  };
}

/** The key the dashboard's cookie holds: stored URI-encoded (dashboard.ts), as a key may hold `;`, `=`, `+` or `/`. */
function adminCookie(req: IncomingMessage): string | undefined {
  const value = readCookie(req, ADMIN_COOKIE);
  if (value === undefined) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Constant time, over digests: neither the key nor its length leaks. */
function sameKey(offered: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(offered), expected);
}

/**
 * A program on this machine: a loopback peer that names a loopback Host and is not another site's
 * web page. The peer alone is not enough. A page can reach loopback under its own name by DNS
 * rebinding (its Host then names that page); and any page open in a browser on this machine
 * reaches loopback under loopback's name — a text/plain POST needs no preflight, and the default
 * allowed origins take every localhost port — so its visitor's machine would vouch for it.
 */
function isLocalRequest(req: IncomingMessage): boolean {
  return isLoopback(clientAddress(req)) && isLoopbackHost(req.headers.host) && !fromAnotherSite(req);
}

/**
 * Whether a browser says a page of another origin made the request: by `Sec-Fetch-Site`, or by an
 * `Origin` naming another host than the request's (Herald's own pages, the dashboard, are not).
 * Programs (curl, backends) send neither.
 */
function fromAnotherSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const end = host.startsWith('[') ? host.indexOf(']') + 1 : host.indexOf(':');
  const name = end < 0 ? host : host.slice(0, end);
  return name === 'localhost' || name === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));
}
