/**
 * @module
 * `GET /presence/{channel}`: the sessions subscribed to a channel (or pattern) on every node, as
 * `{ channel, count, members: [{ id, node, joinedAt }] }`. Member ids are public ids, never
 * clientIds.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from '../core/engine.js';
import { sendError, sendJson } from '../transports/http.js';
import { channelFromPath } from './rest-channel.js';

export class RestPresence {
  constructor(private readonly engine: Engine) {}

  async serve(req: IncomingMessage, res: ServerResponse, path: string, headers: Record<string, string | string[]>): Promise<void> {
    if (req.method !== 'GET') return sendError(res, 405, `method ${req.method} not allowed: use GET`, { ...headers, Allow: 'GET, OPTIONS' });
    const named = channelFromPath(path, true);
    if (!('channel' in named)) return sendError(res, named.status, named.error, headers);
    const channel = named.channel.name;
    const members = await this.engine.presence(channel);
    sendJson(res, 200, JSON.stringify({ channel, count: members.length, members }), headers);
  }
}
