/**
 * @module
 * `POST /sign` (backends, with the publish key): a short-lived token bound to one channel, for
 * applications that do not issue JWTs themselves (icomet's signed subscribe URLs). The backend
 * hands the returned `url` (or `token`) to a browser, which subscribes with it:
 *
 *   curl -X POST localhost:8080/sign -H 'Authorization: Bearer <publish key>' \
 *        -H 'Content-Type: application/json' -d '{"channel":"/chat/room1","ttl":300}'
 *   → {"token":"eyJ…","expiresAt":…,"channel":"/chat/room1","url":"/sub/chat/room1?token=eyJ…"}
 *
 * Body: `channel` (a channel or pattern), `ttl` in seconds (default 300, at most a day),
 * `publish: true` to allow publishing on it too, `subject` to name the bearer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseChannel } from '../core/channel.js';
import { HttpError, isJson, parseJson, readBody, sendError, sendJson, sendRefusal } from '../transports/http.js';
import type { RestGate } from './rest-gate.js';

export const SIGN_PATH = '/sign';
const DEFAULT_TTL_S = 300;
const MAX_TTL_S = 86_400;

export interface ChannelGrant {
  readonly channel: string;
  readonly ttlMs: number;
  readonly publish: boolean;
  readonly subject?: string | undefined;
}

export type SignChannelToken = (grant: ChannelGrant) => Promise<{ token: string; expiresAt: number }>;

export class RestSign {
  constructor(
    private readonly sign: SignChannelToken,
    private readonly gate: RestGate,
  ) {}

  async serve(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, headers: Record<string, string | string[]>): Promise<void> {
    if (req.method !== 'POST') return sendError(res, 405, `method ${req.method} not allowed: use POST`, { ...headers, Allow: 'POST, OPTIONS' });
    const verdict = await this.gate(req, query, 'manage', SIGN_PATH);
    if (!verdict.ok) return sendRefusal(res, verdict, headers);
    let grant: ChannelGrant;
    try {
      if (!isJson(req.headers['content-type'])) throw new HttpError(415, 'send the request as JSON (Content-Type: application/json)');
      grant = readGrant(parseJson((await readBody(req, 4096)).toString('utf8')));
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return sendError(res, error.status, error.message, error.status === 413 ? { ...headers, Connection: 'close' } : headers);
    }
    const { token, expiresAt } = await this.sign(grant);
    const url = `/sub${grant.channel.split('/').map(encodeURIComponent).join('/')}?token=${token}`;
    sendJson(res, 200, JSON.stringify({ token, expiresAt, channel: grant.channel, url }), headers);
  }
}

function readGrant(body: unknown): ChannelGrant {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'the body must be a JSON object: {"channel": "/chat/room1", "ttl": 300}');
  const { channel, ttl = DEFAULT_TTL_S, publish = false, subject } = body as Record<string, unknown>;
  const parsed = parseChannel(channel);
  if (parsed === undefined || parsed.kind !== 'broadcast') throw new HttpError(400, 'channel must be a broadcast channel or pattern such as /chat/room1 or /chat/**');
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_S) throw new HttpError(400, `ttl must be a whole number of seconds from 1 to ${MAX_TTL_S}`);
  if (typeof publish !== 'boolean') throw new HttpError(400, 'publish must be true or false');
  if (publish && parsed.wildcard !== 'none') throw new HttpError(400, 'publish needs one channel, not a pattern');
  if (subject !== undefined && (typeof subject !== 'string' || subject.length === 0 || subject.length > 256)) throw new HttpError(400, 'subject must be a string of 1 to 256 characters');
  return { channel: parsed.name, ttlMs: ttl * 1000, publish, subject };
}
