/**
 * @module
 * CometD's timesync extension (BAYEUX.md §2.3): a meta request carrying `ext.timesync: {tc, l, o}`
 * gets `ext.timesync: {tc, ts, p, a}` back — its own send time, the server's receive time, how long
 * the server held it, and the accuracy the server aims for — so the client can estimate its clock
 * offset from the server's.
 */
import { isObject } from '../message.js';
import type { BayeuxMessage, BayeuxReply } from '../message.js';

/** Milliseconds: what CometD's Java TimesyncExtension is usually configured with. */
export const TIMESYNC_ACCURACY_MS = 1000;

/** A request's timesync, kept to answer it later (a held connect): its `tc`, and when the request arrived. */
export interface PendingTimesync {
  readonly tc: number;
  readonly receivedAt: number;
}

/** What a reply given later needs to answer `request`'s timesync; undefined when it asked for none (nearly always). */
export function timesyncAsked(request: BayeuxMessage, receivedAt: number): PendingTimesync | undefined {
  const tc = tcOf(request);
  return tc === undefined ? undefined : { tc, receivedAt };
}

export function withTimesync(reply: BayeuxReply, request: BayeuxMessage, receivedAt: number, now: number): BayeuxReply {
  const tc = tcOf(request);
  return tc === undefined ? reply : answered(reply, tc, receivedAt, now);
}

export function withPendingTimesync(reply: BayeuxReply, pending: PendingTimesync | undefined, now: number): BayeuxReply {
  return pending === undefined ? reply : answered(reply, pending.tc, pending.receivedAt, now);
}

function tcOf(request: BayeuxMessage): number | undefined {
  const ext = request.ext;
  if (!isObject(ext) || !isObject(ext.timesync)) return undefined;
  const tc = ext.timesync.tc;
  return typeof tc === 'number' && Number.isFinite(tc) ? tc : undefined;
}

function answered(reply: BayeuxReply, tc: number, receivedAt: number, now: number): BayeuxReply {
  const replyExt = isObject(reply.ext) ? reply.ext : {};
  return { ...reply, ext: { ...replyExt, timesync: { tc, ts: receivedAt, p: now - receivedAt, a: TIMESYNC_ACCURACY_MS } } };
}
