/**
 * @module
 * `GET /sub/{channel}` without a streaming transport: a long-poll, answering a JSON array of
 * messages — at once when there is something to send, else when the next message comes or at the
 * timeout. `?wait=0` is a short poll: never held. `?callback=` wraps the answer as JSONP.
 *
 * Every answer names the position to continue from: `Herald-Position: <cursor>` and
 * `ETag: "<cursor>"` (JSONP: the callback's second argument, since a script cannot read headers).
 * A poll that sends it back (`?since=<cursor>`, or `If-None-Match: "<cursor>"`) gets everything
 * published after it, so nothing published between two polls is lost; a conditional poll
 * (`If-None-Match`) that finds nothing new answers `304 Not Modified`.
 *
 * On one channel the cursor is a message id and history answers from it, on any node. A pattern
 * has no history of its own: its cursor names a subscription this node keeps between polls
 * (pattern-polls.ts). When a cursor cannot be honoured (history no longer reaches back; the
 * pattern's subscription is gone), a gap signal goes first, once: a gap alone does not end a held
 * poll, and the answer's cursor is honoured next time.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../core/access.js';
import type { ParsedChannel } from '../core/channel.js';
import type { Engine } from '../core/engine.js';
import type { Hub } from '../core/hub.js';
import { isMessageId } from '../core/ids.js';
import type { ResumeReason, Session } from '../core/session.js';
import type { SessionStore } from '../core/session-store.js';
import type { SubscriptionGuard } from '../core/subscription-guard.js';
import { sendJsonp } from '../transports/callback-polling.js';
import type { CallbackName } from '../transports/callback-polling.js';
import { clientAddress, FLOWING_HEADERS, sendError, sendJson } from '../transports/http.js';
import { PatternPolls } from './pattern-polls.js';
import type { PatternPoll } from './pattern-polls.js';
import { REST_JSON } from './rest-channel.js';

/** The response header naming the position to continue from. */
export const POSITION_HEADER = 'Herald-Position';

export interface SubscribePollOptions {
  readonly timeoutMs: number;
  /** Messages a pattern poller may leave unacknowledged before it is a slow consumer. */
  readonly maxQueue: number;
}

/** One poll, as the subscribe route parsed and authorised it. */
export interface PollRequest {
  readonly channel: ParsedChannel;
  /** `?since=`, already checked to look like a cursor. */
  readonly since: string | undefined;
  readonly callback: CallbackName | undefined;
  readonly principal: Principal | undefined;
  /** Set when the bearer may read only some channels under the pattern: each delivery is checked. */
  readonly guard: SubscriptionGuard | undefined;
}

/** What a poll answers: JSON items (gap signals, messages), and the cursor to continue from. */
interface Answer {
  readonly items: string[];
  readonly cursor: string;
}

export class SubscribePoll {
  readonly #patterns: PatternPolls;

  constructor(
    private readonly sessions: SessionStore,
    private readonly hub: Hub,
    private readonly engine: Engine,
    private readonly options: SubscribePollOptions,
  ) {
    this.#patterns = new PatternPolls(sessions, hub, options.maxQueue);
  }

  async serve(req: IncomingMessage, res: ServerResponse, poll: PollRequest, query: URLSearchParams, headers: Record<string, string>): Promise<void> {
    const wait = query.get('wait');
    if (wait !== null && wait !== '0') return sendError(res, 400, 'wait must be 0 (a short poll) or absent', headers);
    // Scripts cannot send If-None-Match, and a 304 would leave a JSONP callback uncalled.
    const conditional = poll.callback === undefined ? entityTag(req.headers['if-none-match']) : undefined;
    const from = poll.since ?? conditional;
    const send = (answer: Answer) => reply(res, answer, poll.callback, conditional, headers);
    if (poll.channel.wildcard === 'none') await this.#pollChannel(req, res, poll, from, wait === null, send);
    else await this.#pollPattern(req, res, poll, from, wait === null, send);
  }

  /** Subscriptions kept between pattern polls (for tests and metrics). */
  get patternPolls(): number {
    return this.#patterns.size;
  }

  /**
   * One channel: what history holds after the cursor, else (held) the next message. A held poll
   * subscribes before reading history or the position, so a message published in between is
   * queued, not missed.
   */
  async #pollChannel(req: IncomingMessage, res: ServerResponse, poll: PollRequest, from: string | undefined, held: boolean, send: (answer: Answer) => void): Promise<void> {
    const name = poll.channel.name;
    const session = held ? this.sessions.create(clientAddress(req)) : undefined;
    if (session !== undefined) {
      session.transport = 'rest-long-poll';
      // One session per request: anonymous, each would be a new member, joining and leaving.
      session.inPresence = poll.principal?.subject !== undefined;
    }
    const items: string[] = [];
    let cursor: string;
    let fresh = false;
    /** What the client has, of what may also be queued: after a gap its cursor says nothing (it may be a forged, future one). */
    let sentThrough = from;
    try {
      if (session !== undefined) {
        session.principal = poll.principal;
        await this.hub.subscribe(session, name, poll.guard);
      }
      if (from !== undefined) {
        const page = await this.engine.history(name, { since: from });
        if (page.gap) items.push(gapSignal(name, from));
        for (const message of page.messages) items.push(REST_JSON.encode(message));
        fresh = page.messages.length > 0;
        if (page.gap) sentThrough = page.messages[page.messages.length - 1]?.id;
        // After a gap the client's id says nothing any more: continue from here.
        cursor = page.messages[page.messages.length - 1]?.id ?? (page.gap ? await this.engine.position(name) : from);
      } else {
        cursor = await this.engine.position(name);
      }
    } catch (error) {
      // The engine is out of reach (a 503): the poll's subscription must not outlive it.
      if (session !== undefined) this.sessions.close(session, 'client');
      throw error;
    }
    if (session === undefined) return send({ items, cursor });
    if (fresh || res.destroyed) {
      this.sessions.close(session, 'client');
      return send({ items, cursor });
    }
    hold(res, session, this.options.timeoutMs, {
      take: () => {
        // Messages the engine lost while this poll was held (Engine.onGap): said first, as a resume says it.
        for (const lost of session.takeGaps()) items.push(JSON.stringify({ gap: true, channel: lost }));
        // What the client already has (it said so with its cursor) is not sent again.
        // Presence events have no id to resume from: a poll (one request per message) is not told of them.
        const deliveries = session.drain().filter((delivery) => delivery.message.event === undefined && (sentThrough === undefined || delivery.message.id > sentThrough));
        for (const delivery of deliveries) items.push(delivery.encode(REST_JSON));
        return { items, cursor: deliveries[deliveries.length - 1]?.message.id ?? cursor };
      },
      send,
      release: () => this.sessions.close(session, 'client'),
    });
  }

  /** A pattern: what its kept subscription has for the client, else (held) the next message. */
  async #pollPattern(req: IncomingMessage, res: ServerResponse, poll: PollRequest, from: string | undefined, held: boolean, send: (answer: Answer) => void): Promise<void> {
    const name = poll.channel.name;
    const { poll: kept, gap } = await this.#patterns.resume(from, name, clientAddress(req), poll.principal, poll.guard);
    const take = (): Answer => {
      const answer = this.#patterns.take(kept);
      return gap ? { items: [gapSignal(name, from!), ...answer.items], cursor: answer.cursor } : answer;
    };
    const now = take();
    if (!held || res.destroyed || now.items.length > (gap ? 1 : 0)) return send(now);
    // Kept for the next poll: releasing the hold does not end the subscription.
    hold(res, kept.session, this.options.timeoutMs, { take, send, release: () => {} });
  }
}

/** Holds `session` for a poll: answers with `take()` when messages come, at the timeout, or at close. */
function hold(res: ServerResponse, session: Session, timeoutMs: number, then: { take: () => Answer; send: (answer: Answer) => void; release: () => void }): void {
  const waiter = {
    resume: (_reason: ResumeReason) => {
      const answer = then.take();
      then.release();
      then.send(answer);
    },
  };
  session.hold(waiter, timeoutMs);
  res.once('close', () => {
    if (res.writableEnded) return;
    session.cancelHold(waiter);
    then.release();
  });
}

function reply(res: ServerResponse, answer: Answer, callback: CallbackName | undefined, conditional: string | undefined, headers: Record<string, string>): void {
  const position = { ...headers, ETag: `"${answer.cursor}"`, [POSITION_HEADER]: answer.cursor };
  if (answer.items.length === 0 && conditional === answer.cursor) {
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(304, { ...position, ...FLOWING_HEADERS });
    res.end();
    return;
  }
  const body = `[${answer.items.join(',')}]`;
  if (callback === undefined) sendJson(res, 200, body, position);
  else sendJsonp(res, callback, body, position, JSON.stringify(answer.cursor));
}

/** The cursor an `If-None-Match` names (its first entity tag), if it names one. */
function entityTag(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const first = header.split(',')[0]!.trim().replace(/^W\//, '');
  const value = /^"([^"]*)"$/.exec(first)?.[1] ?? first;
  return isMessageId(value) ? value : undefined;
}

function gapSignal(channel: string, since: string): string {
  return JSON.stringify({ gap: true, channel, since });
}
