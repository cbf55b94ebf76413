/**
 * @module
 * `herald kick`, `herald revoke`, `herald server-subscribe|server-unsubscribe`: the control plane
 * from a shell, through the server's HTTP API (`POST /admin/disconnect|revoke|subscribe|unsubscribe`), so the server checks the request as it checks
 * any other and one node acts for the whole cluster.
 */
import { HeraldError } from '../core/errors.js';
import { parseCommand, serverUrl } from './client-options.js';

export const SHARED_OPTIONS = `
Options:
  --url   server URL (HERALD_URL, default http://127.0.0.1:8080)
  --key   publish key; prefer HERALD_PUBLISH_KEY, which other users cannot read in the process list
          (not needed for a server on loopback without one)
`;

export const KICK_USAGE = `Usage: herald kick (--session ID | --user SUB | --channel PATTERN) [--reason TEXT] [--ban] [--url URL] [--key KEY]

Disconnects sessions on every node: one session (its public id), every session of a user (the
token's sub), or every subscriber of a channel pattern. The clients come back at once and resume,
unless --ban tells them not to (a ban lasts for the session; revoke the user's tokens to keep
them out). E.g.
  herald kick --user 42 --reason "permissions changed"
  herald kick --channel '/chat/room1/**' --reason spam --ban
${SHARED_OPTIONS}`;

export const REVOKE_USAGE = `Usage: herald revoke (--jti ID | --sub SUB [--before TIME]) --until TIME [--url URL] [--key KEY]

Revokes tokens on every node, and ends the sessions and streams that use one: the token with that
jti, or every token of a subject issued before --before (default: now). Kept until --until: give
the latest exp of the tokens meant. TIME: seconds since the epoch, an ISO 8601 date, or a
duration from now (90s, 30m, 12h, 7d). E.g.
  herald revoke --sub 42 --until 24h
  herald revoke --jti 6f1c2d --until 2030-01-01T00:00:00Z
${SHARED_OPTIONS}`;

export const SERVER_SUBSCRIBE_USAGE = `Usage: herald server-subscribe|server-unsubscribe (--user SUB | --session ID) --channel CHANNEL [--url URL] [--key KEY]

Puts the live sessions of a user (the token's sub), or one session (its public id), on a channel
or pattern on every node — whatever the access rules say — or takes them off it. Their clients are
told, and keep the subscription across reconnects; sessions opened later are not reached. REST
streams (/sub) keep the channels their URL names. E.g.
  herald server-subscribe --user 42 --channel /user/42/notifications
  herald server-unsubscribe --user 42 --channel /user/42/notifications
${SHARED_OPTIONS}`;

export type Output = { write(text: string): unknown };

/** Returns the exit code: 0 done, 1 the server could not be reached or refused. */
export async function kick(argv: readonly string[], env: NodeJS.ProcessEnv, out: Output, err: Output): Promise<number> {
  const ban = argv.includes('--ban');
  const { values } = parseCommand(argv.filter((arg) => arg !== '--ban'), { session: {}, user: {}, channel: {}, reason: {}, url: {}, key: {} }, 0);
  const body = { session: values.session, user: values.user, channel: values.channel, reason: values.reason, reconnect: !ban };
  return send('/admin/disconnect', body, values, env, out, err);
}

export async function revoke(argv: readonly string[], env: NodeJS.ProcessEnv, out: Output, err: Output): Promise<number> {
  const { values } = parseCommand(argv, { jti: {}, sub: {}, before: {}, until: {}, url: {}, key: {} }, 0);
  const now = Date.now();
  const body = { jti: values.jti, sub: values.sub, before: readTime(values.before, '--before', now), until: readTime(values.until, '--until', now) };
  return send('/admin/revoke', body, values, env, out, err);
}

/** `herald server-subscribe` (kind subscribe) and `herald server-unsubscribe`. */
export async function serverSubscription(kind: 'subscribe' | 'unsubscribe', argv: readonly string[], env: NodeJS.ProcessEnv, out: Output, err: Output): Promise<number> {
  const { values } = parseCommand(argv, { user: {}, session: {}, channel: {}, url: {}, key: {} }, 0);
  return send(`/admin/${kind}`, { user: values.user, session: values.session, channel: values.channel }, values, env, out, err);
}

/**
 * Sends one request to the server's HTTP API with the publish key and prints its JSON answer;
 * `body` undefined: a GET. Returns the exit code: 0 done, 1 the server could not be reached or refused.
 */
export async function send(path: string, body: unknown, values: Record<string, string | undefined>, env: NodeJS.ProcessEnv, out: Output, err: Output): Promise<number> {
  const base = serverUrl(values.url, env);
  const key = values.key ?? env.HERALD_PUBLISH_KEY;
  const headers: Record<string, string> = body === undefined ? {} : { 'Content-Type': 'application/json' };
  if (key !== undefined && key !== '') headers.Authorization = `Bearer ${key}`;
  let response: Response;
  try {
    // Options not given are left out of the JSON: the server names what is missing.
    response = await fetch(new URL(path, base), body === undefined ? { headers } : { method: 'POST', headers, body: JSON.stringify(body) });
  } catch (error) {
    err.write(`herald: cannot reach ${base.origin}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}\n`);
    return 1;
  }
  const text = (await response.text()).trim();
  if (!response.ok) {
    err.write(`herald: the server refused (HTTP ${response.status}): ${text}\n`);
    return 1;
  }
  out.write(`${text}\n`);
  return 0;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A time as the server reads it: seconds since the epoch, an ISO date (as given), or a duration from now turned into seconds. */
function readTime(text: string | undefined, flag: string, now: number): number | string | undefined {
  if (text === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const duration = /^(\d+)([smhd])$/.exec(text);
  if (duration !== null) return Math.ceil((now + Number(duration[1]) * UNIT_MS[duration[2]!]!) / 1000);
  if (/^\d{4}-\d\d-\d\d/.test(text)) return text;
  throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${flag}: expected seconds since the epoch, an ISO 8601 date or a duration such as 12h, got ${JSON.stringify(text)}`);
}
