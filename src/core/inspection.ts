/**
 * @module
 * Inspection: what is live in the cluster, for operators and backends. Each answer is put
 * together from every node's own part, asked through the engine (Engine.inquire: the memory
 * engine has no other node) at the moment of the request — nothing is kept or written on the hot
 * path of a subscription to make it possible:
 * - the channels (and patterns) subscribed to, inside a pattern, with their subscriber counts,
 *   sorted by name and paginated by a cursor;
 * - the sessions of a user (the tokens' `sub`): node, transport, since when, subscriptions, and
 *   the client's address only where the operator allowed it;
 * - each node's totals: sessions, subscriptions, sessions and connections by transport.
 * Nodes that did not answer in time are named (`unanswered`), never silently left out.
 */
import { parseChannel } from './channel.js';
import { channelSet, includes } from './channel-set.js';
import type { Reading } from './control.js';
import type { Engine, Inquiry } from './engine.js';
import type { SessionStore } from './session-store.js';

export interface ChannelsQuery {
  /** A channel or pattern: the channels and patterns subscribed to inside it are listed. */
  readonly pattern: string;
  /** List only names after this one (the previous page's cursor, decoded). */
  readonly after?: string;
  readonly limit: number;
}

export interface LiveChannel {
  /** A channel or pattern some session subscribed to. */
  readonly channel: string;
  /** Sessions subscribed to it, on every node that answered. */
  readonly subscribers: number;
}

export interface ChannelsPage {
  readonly channels: readonly LiveChannel[];
  /** Give it back as `cursor` for the next page; absent on the last one. */
  readonly cursor?: string;
  readonly unanswered: readonly string[];
}

export interface SessionSummary {
  /** Its public id (as presence shows it, and as `/admin/disconnect` takes it). */
  readonly id: string;
  readonly node: string;
  /** A Bayeux connection type, `rest-…` for `/sub`, or `handshaken` before the first connect. */
  readonly transport: string;
  /** When it was opened, in ms since the epoch. */
  readonly since: number;
  readonly subscriptions: readonly string[];
  /** The client's address, when `inspectAddresses` allows it on the node that holds the session. */
  readonly address?: string;
}

export interface NodeTotals {
  readonly node: string;
  readonly sessions: number;
  readonly subscriptions: number;
  /** Sessions by how their clients are connected. */
  readonly transports: Readonly<Record<string, number>>;
  /** Open connections by kind (`tcp` counts them all). */
  readonly connections: Readonly<Record<string, number>>;
}

export interface InspectorOptions {
  /** This node's open connections by kind. */
  readonly connections: () => Record<string, number>;
  /** Whether sessions' addresses may be shown. */
  readonly showAddresses: boolean;
  /** How long the other nodes have to answer. */
  readonly waitMs?: number;
}

export const MAX_CHANNELS_LIMIT = 1000;
export const DEFAULT_CHANNELS_LIMIT = 100;
/** Sessions of one user a node lists at most: a user with more is a problem the first ones show. */
const MAX_USER_SESSIONS = 1000;
const DEFAULT_WAIT_MS = 1000;

export class Inspector {
  constructor(
    private readonly engine: Engine,
    private readonly sessions: SessionStore,
    private readonly options: InspectorOptions,
  ) {
    engine.onInquiry((inquiry) => this.#answer(inquiry));
  }

  async channels(query: ChannelsQuery): Promise<ChannelsPage> {
    const inquiry = { kind: 'channels', pattern: query.pattern, after: query.after, limit: query.limit };
    const { parts, unanswered } = await this.#ask(inquiry);
    const counts = new Map<string, number>();
    let someNodeHasMore = false;
    for (const part of parts) {
      const listed = Array.isArray(part) ? (part as unknown[]) : [];
      if (listed.length >= query.limit) someNodeHasMore = true;
      for (const entry of listed) {
        if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'number') continue;
        counts.set(entry[0], (counts.get(entry[0]) ?? 0) + entry[1]);
      }
    }
    // Each node sent its first `limit` names after the cursor: the first `limit` of their union
    // are the cluster's, and each one's count is whole (no node can hold it past its own first `limit`).
    const names = [...counts.keys()].sort(byName);
    const page = names.slice(0, query.limit);
    const more = names.length > query.limit || someNodeHasMore;
    const channels = page.map((channel) => ({ channel, subscribers: counts.get(channel)! }));
    return { channels, ...(more && page.length > 0 ? { cursor: encodeCursor(page[page.length - 1]!) } : {}), unanswered };
  }

  async userSessions(user: string): Promise<{ sessions: SessionSummary[]; unanswered: readonly string[] }> {
    const { parts, unanswered } = await this.#ask({ kind: 'sessions', user });
    const sessions = parts.flatMap((part) => (Array.isArray(part) ? (part as SessionSummary[]) : []));
    sessions.sort((a, b) => a.since - b.since);
    return { sessions, unanswered };
  }

  async nodes(): Promise<{ nodes: NodeTotals[]; unanswered: readonly string[] }> {
    const { parts, unanswered } = await this.#ask({ kind: 'node' });
    const nodes = parts.filter((part): part is NodeTotals => typeof part === 'object' && part !== null && !Array.isArray(part));
    nodes.sort((a, b) => byName(a.node, b.node));
    return { nodes, unanswered };
  }

  /** This node's part, then every other node's. */
  async #ask(inquiry: Inquiry): Promise<{ parts: unknown[]; unanswered: readonly string[] }> {
    const own = this.#answer(inquiry);
    const { answers, unanswered } = await this.engine.inquire(inquiry, this.options.waitMs ?? DEFAULT_WAIT_MS);
    return { parts: [own, ...answers.map((answer) => answer.answer)], unanswered };
  }

  /** This node's part of an answer (asked here, or by another node through the engine). */
  #answer(inquiry: Inquiry): unknown {
    switch (inquiry.kind) {
      case 'channels':
        return this.#channels(inquiry.pattern, inquiry.after, inquiry.limit);
      case 'sessions':
        return typeof inquiry.user === 'string' ? this.#sessionsOf(inquiry.user) : [];
      case 'node':
        return this.#totals();
      default:
        return undefined;
    }
  }

  /** `[name, subscribers]` of the first `limit` names after `after` inside `pattern`, sorted. */
  #channels(pattern: unknown, after: unknown, limit: unknown): [string, number][] {
    const scope = channelSet(pattern);
    const count = typeof limit === 'number' && Number.isInteger(limit) ? Math.min(Math.max(limit, 1), MAX_CHANNELS_LIMIT) : DEFAULT_CHANNELS_LIMIT;
    if (scope === undefined) return [];
    const counts = new Map<string, number>();
    const inside = new Map<string, boolean>();
    for (const session of this.sessions.all()) {
      for (const name of session.subscriptions) {
        if (typeof after === 'string' && name <= after) continue;
        let within = inside.get(name);
        if (within === undefined) {
          const set = channelSet(name);
          inside.set(name, (within = set !== undefined && includes(scope, set)));
        }
        if (within) counts.set(name, (counts.get(name) ?? 0) + 1);
      }
    }
    return [...counts].sort(([a], [b]) => byName(a, b)).slice(0, count);
  }

  #sessionsOf(user: string): SessionSummary[] {
    const node = this.engine.nodeId;
    const found: SessionSummary[] = [];
    for (const session of this.sessions.all()) {
      if (session.principal?.subject !== user || session.isClosed) continue;
      found.push({
        id: session.publicId,
        node,
        transport: session.transport ?? 'handshaken',
        since: session.openedAt,
        subscriptions: [...session.subscriptions],
        ...(this.options.showAddresses && session.address !== undefined ? { address: session.address } : {}),
      });
      if (found.length >= MAX_USER_SESSIONS) break;
    }
    return found;
  }

  #totals(): NodeTotals {
    const transports: Record<string, number> = {};
    let sessions = 0;
    let subscriptions = 0;
    for (const session of this.sessions.all()) {
      sessions++;
      subscriptions += session.subscriptions.size;
      const transport = session.transport ?? 'handshaken';
      transports[transport] = (transports[transport] ?? 0) + 1;
    }
    return { node: this.engine.nodeId, sessions, subscriptions, transports, connections: this.options.connections() };
  }
}

/** `{pattern?, cursor?, limit?}` (query parameters or the API's options) → a channels query, or what is wrong with it. */
export function readChannelsQuery(input: { pattern?: unknown; cursor?: unknown; limit?: unknown }): Reading<ChannelsQuery> {
  const pattern = input.pattern === undefined || input.pattern === '' ? '/**' : input.pattern;
  if (typeof pattern !== 'string' || pattern.length > 1000 || parseChannel(pattern) === undefined) {
    return { ok: false, error: `pattern ${JSON.stringify(String(pattern).slice(0, 60))} is not a channel or pattern such as /chat/** (default /**)` };
  }
  let limit = DEFAULT_CHANNELS_LIMIT;
  if (input.limit !== undefined && input.limit !== '') {
    limit = typeof input.limit === 'string' && /^\d{1,5}$/.test(input.limit) ? Number(input.limit) : typeof input.limit === 'number' ? input.limit : NaN;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CHANNELS_LIMIT) return { ok: false, error: `limit must be a whole number from 1 to ${MAX_CHANNELS_LIMIT} (default ${DEFAULT_CHANNELS_LIMIT})` };
  }
  if (input.cursor === undefined || input.cursor === '') return { ok: true, value: { pattern, limit } };
  const after = decodeCursor(input.cursor);
  if (after === undefined) return { ok: false, error: 'cursor is not one this API gave: pass back the cursor of the previous page as it was' };
  return { ok: true, value: { pattern, after, limit } };
}

/** Plain code-unit order: the same on every node, and what `name <= after` compares. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function encodeCursor(name: string): string {
  return Buffer.from(name, 'utf8').toString('base64url');
}

function decodeCursor(cursor: unknown): string | undefined {
  if (typeof cursor !== 'string' || cursor.length > 2000 || !/^[\w-]+$/.test(cursor)) return undefined;
  const name = Buffer.from(cursor, 'base64url').toString('utf8');
  return parseChannel(name) === undefined ? undefined : name;
}
