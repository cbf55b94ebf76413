/**
 * @module
 * `herald channels`, `herald sessions` and `herald nodes`: inspection from a shell, through the
 * server's HTTP API (`GET /admin/channels`, `/admin/users/{sub}/sessions`, `/admin/nodes`); the
 * node asked answers for the whole cluster.
 */
import { parseCommand } from './client-options.js';
import { send, SHARED_OPTIONS } from './control.js';
import type { Output } from './control.js';

export const CHANNELS_USAGE = `Usage: herald channels [--pattern PATTERN] [--limit N] [--cursor CURSOR] [--url URL] [--key KEY]

Lists the channels and patterns subscribed to on every node, inside PATTERN (default /**), with
their subscriber counts, sorted by name, N at a time (1-1000, default 100); the answer's cursor,
given back with --cursor, brings the next page. E.g.
  herald channels --pattern '/chat/**' --limit 20
${SHARED_OPTIONS}`;

export const SESSIONS_USAGE = `Usage: herald sessions <sub> [--url URL] [--key KEY]

Lists the sessions of a user (the tokens' sub) on every node: id, node, transport, since (ms
since the epoch), subscriptions, and the address where the server shows it (--inspect-addresses).
${SHARED_OPTIONS}`;

export const NODES_USAGE = `Usage: herald nodes [--url URL] [--key KEY]

Lists every node with its totals: sessions, subscriptions, sessions and connections by transport.
${SHARED_OPTIONS}`;

export async function channels(argv: readonly string[], env: NodeJS.ProcessEnv, out: Output, err: Output): Promise<number> {
  const { values } = parseCommand(argv, { pattern: {}, limit: {}, cursor: {}, url: {}, key: {} }, 0);
  const query = new URLSearchParams();
  for (const name of ['pattern', 'limit', 'cursor'] as const) if (values[name] !== undefined) query.set(name, values[name]!);
  return send(`/admin/channels${query.size > 0 ? `?${query}` : ''}`, undefined, values, env, out, err);
}

export async function sessions(argv: readonly string[], env: NodeJS.ProcessEnv, out: Output, err: Output): Promise<number> {
  const { positionals, values } = parseCommand(argv, { url: {}, key: {} }, 1);
  return send(`/admin/users/${encodeURIComponent(positionals[0]!)}/sessions`, undefined, values, env, out, err);
}

export async function nodes(argv: readonly string[], env: NodeJS.ProcessEnv, out: Output, err: Output): Promise<number> {
  const { values } = parseCommand(argv, { url: {}, key: {} }, 0);
  return send('/admin/nodes', undefined, values, env, out, err);
}
