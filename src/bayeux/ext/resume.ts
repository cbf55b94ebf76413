/**
 * @module
 * Herald's resume extension for Bayeux clients. A client that handshakes with
 * `ext: {herald: {ids: true}}` receives each delivery with its message id in `ext.herald.id`; after
 * a reconnect (even to a new session) it can ask for what it missed:
 * - `/meta/subscribe` with `ext: {herald: {since: "<id>"}}` for one channel;
 * - `/meta/connect` with `ext: {herald: {since: {"<channel>": "<id>", …}}}` for channels it is
 *   subscribed to.
 * What history still holds after each id is queued ahead of anything newer, without duplicates;
 * where history no longer reaches back, cannot be read just now (the engine is out of reach), or
 * the subscription is a pattern, the reply says so in
 * `ext.herald.gap` (subscribe) or `ext.herald.gaps` (connect): never a silent loss.
 * Such a session is also told where to resume from before anything arrives: a subscribe to one
 * channel answers `ext.herald.last` (Engine.position), and a publish answers its message's id in
 * `ext.herald.id` (subscribe.ts, publish.ts).
 */
import { parseChannel } from '../../core/channel.js';
import type { Engine } from '../../core/engine.js';
import { isEngineUnavailable } from '../../core/errors.js';
import { isMessageId } from '../../core/ids.js';
import { Delivery } from '../../core/message.js';
import type { Session } from '../../core/session.js';
import { isObject } from '../message.js';
import type { BayeuxMessage } from '../message.js';


export function wantsIds(handshake: BayeuxMessage): boolean {
  return isObject(handshake.ext) && isObject(handshake.ext.herald) && handshake.ext.herald.ids === true;
}

/** `ext.herald.since` of a message, if present. */
function sinceOf(message: BayeuxMessage): unknown {
  return isObject(message.ext) && isObject(message.ext.herald) ? message.ext.herald.since : undefined;
}

export function asksToResume(message: BayeuxMessage): boolean {
  return sinceOf(message) !== undefined;
}

/**
 * Replays one channel's history after `since` into the session's queue. Returns false when that
 * cannot be done without a gap.
 */
async function replay(session: Session, engine: Engine, channel: string, since: unknown): Promise<boolean> {
  const parsed = parseChannel(channel);
  if (!isMessageId(since) || parsed === undefined || parsed.wildcard !== 'none') return false;
  const page = await engine.history(channel, { since }).catch(unreadable);
  if (page === undefined) return false;
  session.replay(page.messages.map((message) => new Delivery(message)));
  return !page.gap;
}

/**
 * History out of reach just now (a Redis outage) makes a gap, not a failed request: the
 * subscription is live by then, and a refusal would undo it only for clients that ask again —
 * CometD and Faye do not, and would stay unsubscribed without a word.
 */
function unreadable(error: unknown): undefined {
  if (!isEngineUnavailable(error)) throw error;
  return undefined;
}

/** For /meta/subscribe: resumes the subscribed channel; false means a gap to report. */
export function resumeSubscription(session: Session, engine: Engine, subscription: unknown, message: BayeuxMessage): Promise<boolean> {
  return typeof subscription === 'string' ? replay(session, engine, subscription, sinceOf(message)) : Promise.resolve(false);
}

/** For /meta/connect: resumes each named channel the session subscribes to; returns the channels with a gap. */
export async function resumeChannels(session: Session, engine: Engine, message: BayeuxMessage): Promise<string[]> {
  const since = sinceOf(message);
  if (!isObject(since)) return [];
  const gaps: string[] = [];
  for (const [channel, id] of Object.entries(since).slice(0, 256)) {
    if (!session.subscriptions.has(channel) || !(await replay(session, engine, channel, id))) gaps.push(channel);
  }
  return gaps;
}
