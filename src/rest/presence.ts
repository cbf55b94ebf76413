/**
 * @module
 * `GET /presence/{channel}?limit=`: the users subscribed to a channel (or pattern) on every node,
 * as `{ channel, users, connections, members: [{ user, anonymous?, info?, connections, joinedAt,
 * sessions: [{ id, node, joinedAt }] }] }` — `members` at most `limit` (default 1000), the oldest
 * first. `?count` answers `{ channel, users, connections }` only. A user is a token's `sub` (an
 * anonymous session is its public id, never its clientId). Asking takes the right to subscribe to
 * every channel the pattern covers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from '../core/engine.js';
import { presenceListing } from '../core/presence.js';
import { sendError, sendJson, sendRefusal } from '../transports/http.js';
import { channelFromPath, readLimit } from './rest-channel.js';
import type { RestGate } from './rest-gate.js';

export const MAX_PRESENCE_LIMIT = 10_000;

export class RestPresence {
  constructor(
    private readonly engine: Engine,
    private readonly gate: RestGate,
  ) {}

  async serve(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, headers: Record<string, string | string[]>): Promise<void> {
    if (req.method !== 'GET') return sendError(res, 405, `method ${req.method} not allowed: use GET`, { ...headers, Allow: 'GET, OPTIONS' });
    const named = channelFromPath(path, true);
    if (!('channel' in named)) return sendError(res, named.status, named.error, headers);
    const countOnly = query.has('count');
    if (countOnly && query.get('count') !== '' && query.get('count') !== 'true') return sendError(res, 400, 'count takes no value (use ?count)', headers);
    const limit = readLimit(query, 1000, 0, MAX_PRESENCE_LIMIT);
    if (typeof limit !== 'number') return sendError(res, 400, limit.error, headers);
    const channel = named.channel.name;
    // Who listens is as private as what they hear: those listening on a pattern may hear any channel
    // under it, so its listing needs the right to every one of them.
    const verdict = await this.gate(req, query, 'subscribe', channel);
    if (!verdict.ok) return sendRefusal(res, verdict, headers);
    if (verdict.guard !== undefined) {
      return sendError(res, 403, `${channel} spans channels this bearer may not subscribe to: ask for the presence of a narrower pattern or a channel`, headers);
    }
    const entries = await this.engine.presence(channel);
    sendJson(res, 200, JSON.stringify(presenceListing(channel, entries, countOnly ? undefined : limit)), headers);
  }
}
