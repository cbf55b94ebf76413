/**
 * @module
 * `GET /history/{channel}?since=&limit=`: the stored messages of one channel, oldest first, and
 * `gap: true` when messages after `since` were already evicted.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from '../core/engine.js';
import { isMessageId } from '../core/ids.js';
import { sendError, sendJson, sendRefusal } from '../transports/http.js';
import { channelFromPath, readLimit } from './rest-channel.js';
import type { RestGate } from './rest-gate.js';

export const MAX_HISTORY_LIMIT = 1000;

export class RestHistory {
  constructor(
    private readonly engine: Engine,
    private readonly gate: RestGate,
  ) {}

  async serve(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, headers: Record<string, string | string[]>): Promise<void> {
    if (req.method !== 'GET') return sendError(res, 405, `method ${req.method} not allowed: use GET`, { ...headers, Allow: 'GET, OPTIONS' });
    const named = channelFromPath(path, false);
    if (!('channel' in named)) return sendError(res, named.status, named.error, headers);
    const since = query.get('since') ?? undefined;
    if (since !== undefined && !isMessageId(since)) return sendError(res, 400, 'since must be a message id', headers);
    const limit = readLimit(query, 100, 1, MAX_HISTORY_LIMIT);
    if (typeof limit !== 'number') return sendError(res, 400, limit.error, headers);
    const channel = named.channel.name;
    const verdict = await this.gate(req, query, 'subscribe', channel);
    if (!verdict.ok) return sendRefusal(res, verdict, headers);
    const page = await this.engine.history(channel, { since, limit });
    const messages = page.messages.map((m) => ({ id: m.id, channel: m.channel, data: m.data, publishedAt: m.publishedAt }));
    sendJson(res, 200, JSON.stringify({ channel, messages, gap: page.gap }), headers);
  }
}
