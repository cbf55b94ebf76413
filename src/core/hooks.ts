/**
 * @module
 * Backend decision hooks: for applications without JWTs, Herald asks the application's backend
 * whether a client may connect (Bayeux handshake), subscribe or publish, where the access rules
 * say `hook` (access.ts). The doors (bayeux, rest) ask through this interface; the server layer
 * answers it over HTTP (server/decision-hooks.ts). Every failure to get an answer is a refusal:
 * a hook fails closed.
 */
import type { Principal } from './access.js';
import { cookiesVouchedFor } from './protocol.js';

export type HookKind = 'connect' | 'subscribe' | 'publish';

/** What the client showed: only what it sent, and only what may count (no cross-site ambient cookie). */
export interface HookCredentials {
  /** Bayeux `ext.auth`, as the message carried it. */
  readonly auth?: unknown;
  /** The request's `Authorization` header. */
  readonly authorization?: string;
  /** The request's `Cookie` header, on requests no other site can make (see hookCredentials). */
  readonly cookie?: string;
}

/** The request's context, as the backend receives it (JSON). */
export interface HookRequest {
  readonly credentials: HookCredentials;
  /** The channel or pattern to subscribe to or publish on (not for connect). */
  readonly channel?: string;
  /** What a publish carries (publish only). */
  readonly data?: unknown;
  /** The transport: `long-polling`, `websocket`, `sse`, `poll`, `publish` (REST)… */
  readonly transport: string;
  readonly address?: string | undefined;
  /** Who the client is already known as (a token's `sub`, or what the connect hook answered). */
  readonly sub?: string | undefined;
  /** The session's public id (Bayeux), never its clientId (a credential). */
  readonly session?: string | undefined;
}

export type HookDecision =
  | {
      readonly allow: true;
      readonly sub?: string;
      readonly info?: unknown;
      /** Connect only: channels the session joins at once. */
      readonly channels?: readonly string[];
      /** Publish only: the data to publish instead (present even when null). */
      readonly replace?: { readonly data: unknown };
    }
  /** `unavailable`: no decision could be had (timeout, error, bad answer, too many calls): retry later. */
  | { readonly allow: false; readonly reason: string; readonly unavailable: boolean };

export interface DecisionHooks {
  /** Whether a hook of this kind is configured. */
  has(kind: HookKind): boolean;
  /** Asks the backend; never rejects (a failure is a decision with `unavailable`). */
  ask(kind: HookKind, request: HookRequest): Promise<HookDecision>;
}

export const NO_HOOKS: DecisionHooks = {
  has: () => false,
  ask: async () => ({ allow: false, reason: 'no hook is configured', unavailable: true }),
};

/**
 * The principal a session or subscription acts as once a hook named a subject: the token's, if
 * any, under that subject (so kicks and inspection by user find it), with the hook's `info`.
 */
export function withHookSubject(principal: Principal | undefined, decision: HookDecision & { allow: true }): Principal | undefined {
  if (decision.sub === undefined && decision.info === undefined) return principal;
  const subject = decision.sub ?? principal?.subject;
  const claims: Record<string, unknown> = { ...principal?.claims, sub: subject };
  if (decision.info !== undefined) claims.info = decision.info;
  return {
    subject,
    expiresAt: principal?.expiresAt,
    claims,
    grants: principal?.grants ?? { subscribe: [], publish: [] },
  };
}

type Headers = Readonly<Record<string, string | string[] | undefined>>;

/** The headers hookCredentials reads: the credentials, and what tells whether the cookies may count. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'sec-fetch-site', 'origin'] as const;

/**
 * Of `headers`, those hookCredentials reads (undefined when there are none): what a connection
 * open for long keeps for the hooks its later messages may ask, rather than every header.
 */
export function credentialHeaders(headers: Headers): Headers | undefined {
  let kept: Record<string, string | string[]> | undefined;
  for (const name of CREDENTIAL_HEADERS) {
    const value = headers[name];
    if (value !== undefined) (kept ??= {})[name] = value;
  }
  return kept;
}

/**
 * The credentials a request's headers carry (plus a Bayeux message's `ext.auth`). The cookies go
 * only on a request no other site could make, by the same test as the herald_token cookie's: a
 * cross-site page's ambient cookie never authorises.
 */
export function hookCredentials(headers: Headers | undefined, auth?: unknown): HookCredentials {
  const authorization = headers?.authorization;
  const cookie = headers !== undefined && typeof headers.cookie === 'string' && headers.cookie !== '' && cookiesVouchedFor(headers) ? headers.cookie : undefined;
  return {
    ...(auth !== undefined ? { auth } : {}),
    ...(typeof authorization === 'string' && authorization !== '' ? { authorization } : {}),
    ...(cookie !== undefined ? { cookie } : {}),
  };
}
