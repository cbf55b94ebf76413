/**
 * @module
 * Tokens over Bayeux. A client proves who it is with `ext: {auth: {token}}`:
 * - on `/meta/handshake` (or with the HTTP request that carries it: `Authorization: Bearer`,
 *   `?token=`, the `herald_token` cookie) — the session then acts with that token; a cookie
 *   on a request any site could make refuses the handshake (`cookie_token_cross_site`);
 * - on `/meta/subscribe`, for that subscription only (a channel-bound token from `POST /sign`);
 * - on `/meta/connect`, to refresh the session's token before it expires (same subject only).
 * A session whose token expires without a refresh is closed (`403:token_expired:session_closed`,
 * advice handshake), so a client with a token source handshakes again with a fresh one. A session
 * whose token is revoked (control plane) is closed (`403:token_revoked:session_closed`, advice none).
 */
import type { AccessPolicy, Principal, TokenCheck } from '../../core/access.js';
import type { RequestContext } from '../../core/protocol.js';
import { isObject } from '../message.js';
import type { BayeuxMessage } from '../message.js';

/** `ext.auth.token`, if the message carries one. */
export function tokenIn(message: BayeuxMessage): string | undefined {
  const { ext } = message;
  if (!isObject(ext) || !isObject(ext.auth)) return undefined;
  const { token } = ext.auth;
  return typeof token === 'string' && token.length > 0 ? token : undefined;
}

/** `ambient_cookie`: the request's only token was a cookie on a request any site could make. */
export type Authentication =
  | { ok: true; principal: Principal | undefined }
  | Extract<TokenCheck, { ok: false }>
  | { ok: false; reason: 'ambient_cookie'; message: string };

/** Whether a message acts as anyone but anonymous: it or its request carries a token (counted or not). */
export function carriesToken(message: BayeuxMessage, context: RequestContext): boolean {
  return tokenIn(message) !== undefined || context.token !== undefined || context.tokenRefused !== undefined;
}

/** Who a message acts as: its own token, else its HTTP request's, else anonymous. */
export async function authenticate(message: BayeuxMessage, context: RequestContext, access: AccessPolicy): Promise<Authentication> {
  const own = tokenIn(message);
  if (own === undefined && context.tokenRefused !== undefined) return { ok: false, reason: 'ambient_cookie', message: context.tokenRefused };
  const token = own ?? context.token;
  if (token === undefined) return { ok: true, principal: undefined };
  return access.verify(token);
}

/** The reason arg of a refusal: `token_expired`, `token_revoked`, `invalid_token` or `cookie_token_cross_site`. */
export function refusalReason(check: Extract<Authentication, { ok: false }>): string {
  return REFUSAL_REASONS[check.reason];
}

const REFUSAL_REASONS: Record<Extract<Authentication, { ok: false }>['reason'], string> = {
  expired: 'token_expired',
  revoked: 'token_revoked',
  invalid: 'invalid_token',
  ambient_cookie: 'cookie_token_cross_site',
};
