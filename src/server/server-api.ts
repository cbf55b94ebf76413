/**
 * @module
 * What a backend does from code, beside serving: publish (one message or a batch), the control
 * plane (disconnect, revoke, server subscriptions) and inspection. Each reads its request as the HTTP API does, so both
 * refuse the same input with the same words; they throw HeraldError where HTTP answers a 4xx.
 */
import type { BatchItem, BatchResult } from '../core/batch.js';
import { publishBatch, readBatch } from '../core/batch.js';
import type { Clock } from '../core/clock.js';
import type { ControlPlane } from '../core/control-plane.js';
import { readDisconnect, readRevocation, readServerSubscription } from '../core/control.js';
import type { Published } from '../core/engine.js';
import { HeraldError } from '../core/errors.js';
import type { HeraldErrorCode } from '../core/errors.js';
import { readChannelsQuery } from '../core/inspection.js';
import type { ChannelsPage, Inspector, NodeTotals, SessionSummary } from '../core/inspection.js';
import { describeRefusal } from '../core/publisher.js';
import type { PublishRefusal, Publisher } from '../core/publisher.js';

export type { BatchItem, BatchResult } from '../core/batch.js';
export type { ChannelsPage, LiveChannel, NodeTotals, SessionSummary } from '../core/inspection.js';

export interface ServerApi {
  /**
   * Publishes from the server side, as any client would. With `idempotencyKey`, a retry within
   * the idempotency window stores nothing and resolves with the first publish's id, marked
   * `duplicate` (cluster-wide with Redis).
   * @example await herald.publish('/orders/42', { state: 'paid' }, { idempotencyKey: 'order-42-paid' });
   */
  publish(channel: string, data: unknown, options?: { idempotencyKey?: string }): Promise<Published>;
  /**
   * Publishes many messages (at most `maxBatchMessages`), each as publish() would, in order per
   * channel. Resolves with one result per item: `{status: 200, id, channel, subscribers,
   * duplicate?}` or `{status, channel?, error}` — one bad item does not stop the others.
   * @example const results = await herald.publishBatch([{ channel: '/a', data: 1 }, { channel: '/b', data: 2, idempotencyKey: 'k-2' }]);
   */
  publishBatch(items: readonly BatchItem[]): Promise<BatchResult[]>;
  /**
   * Ends the sessions named — one (`session`: its public id), a user's (`user`: the token's
   * `sub`) or a pattern's subscribers (`channel`) — on every node. `reconnect` (default true):
   * the clients come back and resume; false: they are told not to. `reason` is told to them.
   * Resolves with how many sessions closed on this node; throws HERALD_ERR_INVALID_REQUEST.
   * @example await herald.disconnect({ user: '42', reason: 'spam', reconnect: false });
   */
  disconnect(request: { session?: string; user?: string; channel?: string; reason?: string; reconnect?: boolean }): Promise<{ closedHere: number }>;
  /**
   * Revokes tokens on every node — one (`jti`), or a subject's issued before `before` (default:
   * now) — until `until` (seconds since the epoch, an ISO string or a Date; give the latest `exp`
   * of the tokens meant), and ends the sessions and streams acting with one.
   * @example await herald.revoke({ sub: '42', until: new Date(Date.now() + 3600_000) });
   */
  revoke(request: { jti?: string; sub?: string; before?: number | string | Date; until: number | string | Date }): Promise<{ closedHere: number }>;
  /**
   * Puts the live Bayeux sessions of a user (`user`: the token's `sub`) or one session
   * (`session`: its public id) on `channel` (a channel or pattern) on every node, whatever the
   * access rules say; their clients are told (the Herald client's `serverSubscription` event) and
   * keep it across reconnects. Sessions opened later are not reached. Resolves with how many
   * sessions it reached on this node, once they are subscribed; throws HERALD_ERR_INVALID_REQUEST.
   * @example await herald.serverSubscribe({ user: '42', channel: '/user/42/notifications' });
   */
  serverSubscribe(request: { user?: string; session?: string; channel: string }): Promise<{ reachedHere: number }>;
  /** Takes the sessions named off `channel` on every node, whoever subscribed them, and withdraws their right to come back to it. */
  serverUnsubscribe(request: { user?: string; session?: string; channel: string }): Promise<{ reachedHere: number }>;
  /**
   * The channels and patterns subscribed to inside `pattern` (default `/**`) on every node, with
   * their subscriber counts, sorted by name, `limit` (1–1000, default 100) at a time: pass the
   * page's `cursor` back for the next one. `unanswered`: live nodes that did not answer in time.
   * @example const { channels, cursor } = await herald.channels({ pattern: '/chat/**', limit: 50 });
   */
  channels(query?: { pattern?: string; cursor?: string; limit?: number }): Promise<ChannelsPage>;
  /** The sessions of a user (the tokens' `sub`) on every node. */
  userSessions(sub: string): Promise<{ sessions: SessionSummary[]; unanswered: readonly string[] }>;
  /** Every node's totals: sessions, subscriptions, sessions and connections by transport. */
  nodes(): Promise<{ nodes: NodeTotals[]; unanswered: readonly string[] }>;
}

export interface ServerApiParts {
  readonly publisher: Publisher;
  readonly control: ControlPlane;
  readonly inspector: Inspector;
  readonly clock: Clock;
  readonly maxBatchMessages: number;
}

export function createServerApi({ publisher, control, inspector, clock, maxBatchMessages }: ServerApiParts): ServerApi {
  return {
    async publish(channel, data, options = {}) {
      const outcome = await publisher.publish(channel, data, options.idempotencyKey);
      if (outcome.ok) return outcome.duplicate ? { ...outcome.message, duplicate: true } : outcome.message;
      throw new HeraldError(PUBLISH_ERROR_CODES[outcome.reason], describeRefusal(outcome));
    },
    async publishBatch(items) {
      const batch = readBatch(items, maxBatchMessages);
      if (!batch.ok) throw new HeraldError('HERALD_ERR_INVALID_REQUEST', batch.error);
      return publishBatch(publisher, batch.value);
    },
    async disconnect(request) {
      const command = readDisconnect(request);
      if (!command.ok) throw new HeraldError('HERALD_ERR_INVALID_REQUEST', command.error);
      return { closedHere: await control.disconnect(command.value) };
    },
    async revoke(request) {
      const revocation = readRevocation(request, clock.now());
      if (!revocation.ok) throw new HeraldError('HERALD_ERR_INVALID_REQUEST', revocation.error);
      return { closedHere: await control.revoke(revocation.value) };
    },
    serverSubscribe: (request) => serverSubscription(control, request, 'subscribe'),
    serverUnsubscribe: (request) => serverSubscription(control, request, 'unsubscribe'),
    async channels(query = {}) {
      const read = readChannelsQuery(query);
      if (!read.ok) throw new HeraldError('HERALD_ERR_INVALID_REQUEST', read.error);
      return inspector.channels(read.value);
    },
    async userSessions(sub) {
      if (typeof sub !== 'string' || sub === '' || sub.length > 256) throw new HeraldError('HERALD_ERR_INVALID_REQUEST', 'sub must be a non-empty string of at most 256 characters');
      return inspector.userSessions(sub);
    },
    nodes: () => inspector.nodes(),
  };
}

async function serverSubscription(control: ControlPlane, request: unknown, kind: 'subscribe' | 'unsubscribe'): Promise<{ reachedHere: number }> {
  const command = readServerSubscription(request, kind);
  if (!command.ok) throw new HeraldError('HERALD_ERR_INVALID_REQUEST', command.error);
  return { reachedHere: await control.serverSubscription(command.value) };
}

/** The error the server-side API throws for each refusal of a publish. */
const PUBLISH_ERROR_CODES: Record<PublishRefusal['reason'], HeraldErrorCode> = {
  invalid_channel: 'HERALD_ERR_INVALID_CHANNEL',
  invalid_data: 'HERALD_ERR_INVALID_DATA',
  too_large: 'HERALD_ERR_MESSAGE_TOO_LARGE',
  invalid_idempotency_key: 'HERALD_ERR_INVALID_REQUEST',
  idempotency_conflict: 'HERALD_ERR_IDEMPOTENCY_CONFLICT',
};
