/**
 * @module
 * Inspection over plain HTTP, behind the publish key (the REST gate's `manage` action; without a
 * key, loopback clients only), answered from every node of the cluster (core/inspection.ts):
 * - `GET /admin/channels?pattern=&cursor=&limit=` → `{channels: [{channel, subscribers}], cursor?, unanswered}`
 * - `GET /admin/users/{sub}/sessions` → `{user, sessions: [{id, node, transport, since, subscriptions, address?}], unanswered}`
 * - `GET /admin/nodes` → `{nodes: [{node, sessions, subscriptions, transports, connections}], unanswered}`
 * `unanswered` names the live nodes that did not answer within a second. The dashboard serves the
 * same under `/dashboard/…` to holders of the admin key (server/dashboard.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readChannelsQuery } from '../core/inspection.js';
import type { Inspector } from '../core/inspection.js';
import { sendError, sendJson, sendRefusal } from '../transports/http.js';
import type { RestGate } from './rest-gate.js';

export const CHANNELS_PATH = '/admin/channels';
export const NODES_PATH = '/admin/nodes';
export const USERS_PREFIX = '/admin/users/';
const SESSIONS_SUFFIX = '/sessions';

export class RestInspection {
  constructor(
    private readonly inspector: Inspector,
    private readonly gate: RestGate,
  ) {}

  /** Whether `pathname` is one of inspection's (else the control plane's, or no path). */
  static owns(pathname: string): boolean {
    return pathname === CHANNELS_PATH || pathname === NODES_PATH || pathname.startsWith(USERS_PREFIX);
  }

  async serve(req: IncomingMessage, res: ServerResponse, pathname: string, query: URLSearchParams, headers: Record<string, string>): Promise<void> {
    const verdict = await this.gate(req, query, 'manage', pathname);
    if (!verdict.ok) return sendRefusal(res, verdict, headers);
    return this.answer(req, res, pathname, query, headers);
  }

  /** Answers a request whose sender was let in already (by the REST gate, or the dashboard's admin key). */
  async answer(req: IncomingMessage, res: ServerResponse, pathname: string, query: URLSearchParams, headers: Record<string, string>): Promise<void> {
    if (req.method !== 'GET') return sendError(res, 405, `method ${req.method} not allowed: use GET`, { ...headers, Allow: 'GET, OPTIONS' });
    if (pathname.startsWith(USERS_PREFIX)) {
      const encoded = pathname.slice(USERS_PREFIX.length);
      if (!encoded.endsWith(SESSIONS_SUFFIX) || encoded.length === SESSIONS_SUFFIX.length || encoded.slice(0, -SESSIONS_SUFFIX.length).includes('/')) {
        return sendError(res, 404, `no such path: ${pathname.slice(0, 100)} (use ${USERS_PREFIX}{sub}${SESSIONS_SUFFIX}, the sub URL-encoded)`, headers);
      }
      let user: string;
      try {
        user = decodeURIComponent(encoded.slice(0, -SESSIONS_SUFFIX.length));
      } catch {
        return sendError(res, 400, 'the sub in the path is not valid URL encoding', headers);
      }
      if (user.length > 256) return sendError(res, 400, 'the sub must be at most 256 characters', headers);
      const { sessions, unanswered } = await this.inspector.userSessions(user);
      return sendJson(res, 200, JSON.stringify({ user, sessions, unanswered }), headers);
    }
    if (pathname === NODES_PATH) return sendJson(res, 200, JSON.stringify(await this.inspector.nodes()), headers);
    const unknown = [...query.keys()].find((key) => !['pattern', 'cursor', 'limit', 'token', 'key'].includes(key));
    if (unknown !== undefined) return sendError(res, 400, `unknown parameter ${JSON.stringify(unknown.slice(0, 40))}: use pattern, cursor, limit`, headers);
    const read = readChannelsQuery({ pattern: query.get('pattern') ?? undefined, cursor: query.get('cursor') ?? undefined, limit: query.get('limit') ?? undefined });
    if (!read.ok) return sendError(res, 400, read.error, headers);
    sendJson(res, 200, JSON.stringify(await this.inspector.channels(read.value)), headers);
  }
}
