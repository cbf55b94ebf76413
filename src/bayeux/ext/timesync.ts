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

export function withTimesync(reply: BayeuxReply, request: BayeuxMessage, receivedAt: number, now: number): BayeuxReply {
  const ext = request.ext;
  if (!isObject(ext) || !isObject(ext.timesync)) return reply;
  const tc = ext.timesync.tc;
  if (typeof tc !== 'number' || !Number.isFinite(tc)) return reply;
  const replyExt = isObject(reply.ext) ? reply.ext : {};
  return { ...reply, ext: { ...replyExt, timesync: { tc, ts: receivedAt, p: now - receivedAt, a: TIMESYNC_ACCURACY_MS } } };
}
