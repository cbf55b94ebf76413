/**
 * @module
 * The cursor of a long-poll on a channel pattern (`GET /sub/stocks/*`). History is kept per
 * channel, so a pattern cannot be resumed from a message id; instead this node keeps the poll's
 * subscription between polls — a session that queues what arrives while no poll is held, and
 * expires like any session nobody listens on (`maxInterval`). The cursor names that subscription
 * and how far the client has read it: `<session id>z<reply number>`.
 *
 * What a reply carried is forgotten only once a later poll's cursor says it arrived: a poll that
 * comes back with an older cursor (its reply was lost on the way) gets it again. A cursor this
 * node cannot honour — the subscription expired, was closed as a slow consumer, or lives on
 * another node — starts a new subscription, and the caller reports a gap.
 */
import type { Principal } from '../core/access.js';
import type { Hub } from '../core/hub.js';
import type { Session } from '../core/session.js';
import type { SessionStore } from '../core/session-store.js';
import type { SubscriptionGuard } from '../core/subscription-guard.js';
import { REST_JSON } from './rest-channel.js';

/** One pattern poller's subscription, kept between its polls. */
export interface PatternPoll {
  readonly session: Session;
  readonly pattern: string;
  /** Replies that carried messages so far: the cursor's second half. */
  seq: number;
  /** The newest reply the client has said it received. */
  acked: number;
  /** Messages sent but not yet acknowledged, each with the reply that first carried it. */
  unacked: { readonly seq: number; readonly json: string }[];
}

export class PatternPolls {
  readonly #polls = new Map<string, PatternPoll>();

  constructor(
    private readonly sessions: SessionStore,
    private readonly hub: Hub,
    /** More unacknowledged messages than this and the poller is a slow consumer. */
    private readonly maxUnacked: number,
  ) {
    sessions.onClosed((session) => this.#polls.delete(session.id));
  }

  /**
   * The subscription `cursor` names, told what the client has received; else a new one. `gap`:
   * the client asked to resume (it sent a cursor) and what it missed since cannot be told.
   */
  async resume(
    cursor: string | undefined,
    pattern: string,
    address: string | undefined,
    principal: Principal | undefined,
    guard: SubscriptionGuard | undefined,
  ): Promise<{ poll: PatternPoll; gap: boolean }> {
    const named = cursor === undefined ? undefined : parseCursor(cursor);
    const poll = named === undefined ? undefined : this.#polls.get(named.id);
    if (named !== undefined && poll !== undefined && poll.pattern === pattern && !poll.session.isClosed && named.seq <= poll.seq) {
      // A renewed token extends the subscription; an expired one ends it (the sweep closes it).
      poll.session.principal = principal;
      // What the subscription may deliver is decided anew for the token it now acts with.
      await this.hub.subscribe(poll.session, pattern, guard);
      poll.session.touch();
      if (named.seq < poll.acked) return { poll, gap: true };
      poll.acked = named.seq;
      poll.unacked = poll.unacked.filter((sent) => sent.seq > named.seq);
      return { poll, gap: false };
    }
    const session = this.sessions.create(address);
    session.principal = principal;
    session.transport = 'rest-long-poll';
    const fresh: PatternPoll = { session, pattern, seq: 0, acked: 0, unacked: [] };
    this.#polls.set(session.id, fresh);
    await this.hub.subscribe(session, pattern, guard);
    return { poll: fresh, gap: cursor !== undefined };
  }

  /** What to send now (unacknowledged messages, then newly queued ones) and the cursor that acknowledges it. */
  take(poll: PatternPoll): { items: string[]; cursor: string } {
    // Messages the engine lost meanwhile (Engine.onGap) are said before what follows, and kept until acknowledged like them.
    const gaps = poll.session.takeGaps();
    const drained = poll.session.drain();
    if (drained.length > 0 || gaps.length > 0) {
      poll.seq++;
      for (const channel of gaps) poll.unacked.push({ seq: poll.seq, json: JSON.stringify({ gap: true, channel }) });
      for (const delivery of drained) poll.unacked.push({ seq: poll.seq, json: delivery.encode(REST_JSON) });
      if (poll.unacked.length > this.maxUnacked) this.sessions.close(poll.session, 'queue_full');
    }
    return { items: poll.unacked.map((sent) => sent.json), cursor: cursorOf(poll) };
  }

  /** Subscriptions kept between polls now. */
  get size(): number {
    return this.#polls.size;
  }
}

export function cursorOf(poll: PatternPoll): string {
  return `${poll.session.id}z${poll.seq}`;
}

function parseCursor(cursor: string): { id: string; seq: number } | undefined {
  const mark = cursor.lastIndexOf('z');
  const seq = cursor.slice(mark + 1);
  return mark > 0 && /^\d{1,9}$/.test(seq) ? { id: cursor.slice(0, mark), seq: Number(seq) } : undefined;
}
