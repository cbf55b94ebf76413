/**
 * @module
 * The control plane's commands, and how a request for one is read: an operator disconnects
 * sessions (by session, user or channel pattern) or revokes tokens (by `jti`, or every token of a
 * `sub` issued before a time). The same reading serves every way in — HTTP (`POST /admin/…`),
 * `herald.disconnect()` / `herald.revoke()` and the CLI, which goes through HTTP — so each refuses
 * the same input with the same words. Nothing here acts: see control-plane.ts.
 */
import { parseChannel } from './channel.js';

/** Whom a disconnect reaches: one session (its public id), every session of a user (the token's `sub`), or every subscriber of a pattern. */
export type DisconnectTarget = { readonly session: string } | { readonly user: string } | { readonly channel: string };

export interface DisconnectCommand {
  readonly kind: 'disconnect';
  readonly target: DisconnectTarget;
  /** True: the client handshakes again and resumes (`kicked`); false: it is told not to come back (`banned`). */
  readonly reconnect: boolean;
  /** The operator's words on why, told to the client beside the reason. */
  readonly note?: string | undefined;
}

/**
 * Tokens no longer accepted, until `until` (ms since the epoch; past it the record goes, so give
 * the latest `exp` of the tokens meant). By `jti`: that token. By `sub`: every token of that
 * subject whose `iat` is before `before` (ms; a token without `iat` counts as before).
 */
export type Revocation =
  | { readonly kind: 'jti'; readonly jti: string; readonly until: number }
  | { readonly kind: 'sub'; readonly sub: string; readonly before: number; readonly until: number };

export interface RevokeCommand {
  readonly kind: 'revoke';
  readonly revocation: Revocation;
}

/** Whom a server subscription reaches: one session (its public id), or every live session of a user (the token's `sub`). */
export type SubscriptionTarget = { readonly session: string } | { readonly user: string };

/**
 * The backend puts sessions on a channel (or pattern), or takes them off it, whatever the access
 * rules say: the backend is trusted. Live Bayeux sessions only (see server-subscriptions.ts).
 */
export interface ServerSubscriptionCommand {
  readonly kind: 'subscribe' | 'unsubscribe';
  readonly target: SubscriptionTarget;
  readonly channel: string;
}

export type ControlCommand = DisconnectCommand | RevokeCommand | ServerSubscriptionCommand;

export type Reading<T> = { ok: true; value: T } | { ok: false; error: string };

/** Longest id, subject, jti or note accepted. */
const MAX_NAME = 256;
const MAX_NOTE = 200;
/** A revocation is kept at most this long: longer-lived tokens should not exist, and the store stays bounded. */
export const MAX_REVOCATION_MS = 366 * 24 * 3600 * 1000;
/** Seconds since the epoch above this are milliseconds by mistake (year 5138). */
const MAX_EPOCH_SECONDS = 1e11;

/** `{session|user|channel, reason?, reconnect?}` → a disconnect command, or what is wrong with it. */
export function readDisconnect(input: unknown): Reading<DisconnectCommand> {
  if (!isRecord(input)) return refuse('send a JSON object such as {"user": "42", "reason": "spam", "reconnect": false}');
  const unknown = Object.keys(input).find((key) => !['session', 'user', 'channel', 'reason', 'reconnect'].includes(key));
  if (unknown !== undefined) return refuse(`${quote(unknown)} is not a field: use one of session, user, channel, and reason, reconnect`);
  const named = (['session', 'user', 'channel'] as const).filter((key) => input[key] !== undefined);
  if (named.length !== 1) return refuse(`name exactly one of session, user, channel (got ${named.length === 0 ? 'none' : named.join(', ')})`);
  const key = named[0]!;
  const value = input[key];
  if (typeof value !== 'string' || value === '' || value.length > MAX_NAME) return refuse(`${key} must be a non-empty string of at most ${MAX_NAME} characters`);
  if (key === 'channel' && parseChannel(value) === undefined) return refuse(`channel ${quote(value)} is not a channel or pattern such as /chat/**`);
  const note = readNote(input.reason);
  if (!note.ok) return note;
  if (input.reconnect !== undefined && typeof input.reconnect !== 'boolean') return refuse('reconnect must be true (the client comes back) or false (it must not)');
  const target = { [key]: value } as unknown as DisconnectTarget;
  return { ok: true, value: { kind: 'disconnect', target, reconnect: input.reconnect !== false, note: note.value } };
}

/** `{user|session, channel}` → a server (un)subscription, or what is wrong with it. */
export function readServerSubscription(input: unknown, kind: 'subscribe' | 'unsubscribe'): Reading<ServerSubscriptionCommand> {
  if (!isRecord(input)) return refuse('send a JSON object such as {"user": "42", "channel": "/user/42/notifications"}');
  const unknown = Object.keys(input).find((key) => !['session', 'user', 'channel'].includes(key));
  if (unknown !== undefined) return refuse(`${quote(unknown)} is not a field: use user or session, and channel`);
  const named = (['session', 'user'] as const).filter((key) => input[key] !== undefined);
  if (named.length !== 1) return refuse(`name exactly one of session, user (got ${named.length === 0 ? 'none' : named.join(', ')})`);
  const key = named[0]!;
  const value = input[key];
  if (typeof value !== 'string' || value === '' || value.length > MAX_NAME) return refuse(`${key} must be a non-empty string of at most ${MAX_NAME} characters`);
  const { channel } = input;
  if (channel === undefined) return refuse('channel is required: the channel or pattern to put the sessions on, such as /user/42/notifications');
  if (typeof channel !== 'string' || channel.length > 1024) return refuse('channel must be a string of at most 1024 characters');
  const parsed = parseChannel(channel);
  // /meta is the protocol's own; /service messages go to their sender only, so nobody is subscribed to them.
  if (parsed === undefined || parsed.kind !== 'broadcast') return refuse(`channel ${quote(channel)} is not a broadcast channel or pattern such as /user/42/notifications or /team/7/**`);
  const target = { [key]: value } as unknown as SubscriptionTarget;
  return { ok: true, value: { kind, target, channel } };
}

/** `{jti|sub, before?, until}` → a revocation, or what is wrong with it. Times: seconds since the epoch (as `iat`/`exp`), an ISO 8601 string, or a Date. */
export function readRevocation(input: unknown, now: number): Reading<Revocation> {
  if (!isRecord(input)) return refuse('send a JSON object such as {"sub": "42", "until": 1767225600}');
  const unknown = Object.keys(input).find((key) => !['jti', 'sub', 'before', 'until'].includes(key));
  if (unknown !== undefined) return refuse(`${quote(unknown)} is not a field: use jti or sub, before (with sub), until`);
  const named = (['jti', 'sub'] as const).filter((key) => input[key] !== undefined);
  if (named.length !== 1) return refuse(`name exactly one of jti, sub (got ${named.length === 0 ? 'none' : named.join(', ')})`);
  const key = named[0]!;
  const value = input[key];
  if (typeof value !== 'string' || value === '' || value.length > MAX_NAME) return refuse(`${key} must be a non-empty string of at most ${MAX_NAME} characters`);
  if (input.until === undefined) return refuse('until is required: when the revocation may be forgotten (the latest exp of the tokens meant)');
  const until = readTime(input.until, 'until');
  if (!until.ok) return until;
  if (until.value <= now) return refuse('until is in the past: tokens expired by then need no revocation');
  if (until.value > now + MAX_REVOCATION_MS) return refuse('until is more than 366 days ahead: give the latest exp of the tokens meant');
  if (key === 'jti') {
    if (input.before !== undefined) return refuse('before goes with sub: a jti names one token');
    return { ok: true, value: { kind: 'jti', jti: value, until: until.value } };
  }
  // Tokens issued in the second of the revocation count as before it: `iat` has whole seconds.
  const before = input.before === undefined ? { ok: true as const, value: (Math.floor(now / 1000) + 1) * 1000 } : readTime(input.before, 'before');
  if (!before.ok) return before;
  if (before.value > until.value) return refuse('before is after until: the revocation would be forgotten before it stops applying');
  return { ok: true, value: { kind: 'sub', sub: value, before: before.value, until: until.value } };
}

/** A moment in ms since the epoch: seconds since the epoch, an ISO 8601 string, or a Date. */
function readTime(value: unknown, name: string): Reading<number> {
  if (value instanceof Date && Number.isFinite(value.getTime())) return { ok: true, value: value.getTime() };
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
    if (value > MAX_EPOCH_SECONDS) return refuse(`${name} looks like milliseconds: give seconds since the epoch (as a token's exp and iat)`);
    return { ok: true, value: Math.round(value * 1000) };
  }
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\d/.test(value) && Number.isFinite(Date.parse(value))) return { ok: true, value: Date.parse(value) };
  return refuse(`${name} must be seconds since the epoch (as a token's exp) or an ISO 8601 date such as 2030-01-01T00:00:00Z`);
}

function readNote(value: unknown): Reading<string | undefined> {
  if (value === undefined) return { ok: true, value: undefined };
  // Control characters would break the lines and frames the note is written into.
  if (typeof value !== 'string' || value.length > MAX_NOTE || /[\u0000-\u001f\u007f]/.test(value)) return refuse(`reason must be text of at most ${MAX_NOTE} characters, without control characters`);
  return { ok: true, value: value === '' ? undefined : value };
}

function refuse(error: string): { ok: false; error: string } {
  return { ok: false, error };
}

function quote(text: string): string {
  return JSON.stringify(text.slice(0, 60));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}
