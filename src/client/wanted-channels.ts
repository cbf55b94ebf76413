/**
 * @module
 * The channels the link keeps the server subscribed to — for this client's handlers, or because
 * the server subscribed it (a server subscription, kept with its grant) — and where each resumes
 * from: every new session subscribes them all again, resuming each channel after the last message
 * id delivered, so a reconnect loses nothing history still holds.
 */
import type { Connection } from './connection.js';
import type { Message, ServerSubscriptionNotice } from './protocol.js';
import { messageIdOf, presenceEventOf } from './protocol.js';
import type { Downstream } from './upstream.js';

interface Wanted {
  /** Resume point: an id the server gave when it confirmed the subscription, or one the caller gave. */
  since: string | undefined;
  confirmed: boolean;
  /** Confirmed on an earlier session: subscribing again is a resume. */
  resumes: boolean;
  /** False when only the server wants the channel (a server subscription), not this client's handlers. */
  own: boolean;
  /** A server subscription's grant: shown when subscribing again, instead of the access rules. */
  grant?: string | undefined;
}

/** Where a subscription starts: after `since`, or now. Absent: resume after the newest id known. */
type Start = { since: string | undefined } | undefined;

export class WantedChannels {
  readonly #wanted = new Map<string, Wanted>();
  /** Newest message id delivered per concrete channel: where a new session resumes from. */
  readonly #lastIds = new Map<string, string>();
  /** Subscribes the server asked to be sent again later. */
  readonly #retries = new Set<ReturnType<typeof setTimeout>>();

  /** `current`: the session in use, if any; replies from any other are stale. */
  constructor(
    private readonly downstream: Downstream,
    private readonly current: () => Connection | undefined,
    seedIds: ReadonlyMap<string, string>,
  ) {
    for (const [channel, id] of seedIds) this.#lastIds.set(channel, id);
  }

  want(channel: string, since: string | undefined): void {
    const existing = this.#wanted.get(channel);
    const connection = this.current();
    if (existing !== undefined) existing.own = true;
    if (existing === undefined) {
      this.#wanted.set(channel, { since, confirmed: false, resumes: false, own: true });
      if (connection !== undefined) void this.#subscribe(connection, channel, { since });
    } else if (since !== undefined && connection !== undefined) {
      // Someone new asks from an earlier point: the server replays history after it (the
      // subscription itself is unchanged; what was seen already is dropped by the client).
      void this.#subscribe(connection, channel, { since });
    } else if (existing.confirmed) {
      this.downstream.subscribed(channel);
    }
  }

  unwant(channel: string): void {
    const wanted = this.#wanted.get(channel);
    if (wanted === undefined) return;
    // The server subscribed this client: it stays, for the serverMessage handlers.
    if (wanted.grant !== undefined) {
      wanted.own = false;
      return;
    }
    this.#wanted.delete(channel);
    // Subscribing again later starts afresh, not from where this subscription stopped.
    this.#lastIds.delete(channel);
    this.current()?.request({ channel: '/meta/unsubscribe', subscription: channel }).catch(() => undefined);
  }

  /**
   * The server subscribed this session to a channel (it is live already: no request), or took it
   * off. `live`: told by the current session (else another tab's, and this link subscribes itself).
   */
  serverSubscription(notice: ServerSubscriptionNotice, live: boolean): void {
    const { channel } = notice;
    const connection = this.current();
    let wanted = this.#wanted.get(channel);
    if (!notice.subscribed) {
      if (wanted?.grant === undefined) return;
      wanted.grant = undefined;
      if (!wanted.own) {
        this.#wanted.delete(channel);
        this.#lastIds.delete(channel);
      } else if (connection !== undefined) {
        // Still wanted by this client's own handlers: it asks again, under the access rules.
        void this.#subscribe(connection, channel);
      }
      this.downstream.serverSubscription(channel, false);
      return;
    }
    if (wanted === undefined) {
      wanted = { since: undefined, confirmed: live, resumes: live, own: false };
      this.#wanted.set(channel, wanted);
      if (!live && connection !== undefined) {
        wanted.grant = notice.grant;
        void this.#subscribe(connection, channel);
      }
    }
    wanted.grant = notice.grant ?? wanted.grant;
    wanted.since = maxId(wanted.since, notice.last);
    this.downstream.serverSubscription(channel, true, wanted.grant);
  }

  /**
   * Hands a delivery on, recording its id so a later session resumes after it: only for channels
   * subscribed to by name, the only ones that resume (a pattern's channels are without number).
   */
  deliver(message: Message): void {
    const event = presenceEventOf(message);
    if (event !== undefined) return this.downstream.deliver(message.channel, message.data, undefined, event);
    const id = messageIdOf(message);
    if (id !== undefined && this.#wanted.has(message.channel)) this.#lastIds.set(message.channel, maxId(this.#lastIds.get(message.channel), id)!);
    this.downstream.deliver(message.channel, message.data, id);
  }

  /**
   * Subscribes everything on a new session; each promise settles once the server has answered.
   * `afterLoss`: the previous session ended, so each channel resumes from its last id (and what it
   * missed is resumed or reported); else the old session covers everything until the new one is
   * subscribed, so there is nothing to resume.
   */
  subscribeAll(connection: Connection, afterLoss: boolean): Promise<void>[] {
    this.unconfirm();
    const start: Start = afterLoss ? undefined : { since: undefined };
    return [...this.#wanted.keys()].map((channel) => this.#subscribe(connection, channel, start, afterLoss));
  }

  /** The session ended: nothing is subscribed until the next one confirms it again. */
  unconfirm(): void {
    for (const wanted of this.#wanted.values()) wanted.confirmed = false;
  }

  /** Drops the subscribes waiting to be asked again. */
  close(): void {
    for (const timer of this.#retries) clearTimeout(timer);
    this.#retries.clear();
  }

  /**
   * Subscribes on `connection`. A new subscription starts from `start.since` (or now); a renewed
   * one resumes after the newest id known for the channel. `afterLoss`: the previous session
   * ended, so what it missed must be resumed or reported. Settles once the server has answered.
   */
  #subscribe(connection: Connection, channel: string, start?: Start, afterLoss = false): Promise<void> {
    const wanted = this.#wanted.get(channel)!;
    const pattern = channel.endsWith('*');
    const since = start !== undefined ? start.since : maxId(this.#lastIds.get(channel), wanted.since);
    const message: Message = { channel: '/meta/subscribe', subscription: channel };
    const herald: Record<string, unknown> = {};
    if (since !== undefined && !pattern) herald.since = since;
    if (wanted.grant !== undefined) herald.grant = wanted.grant;
    if (Object.keys(herald).length > 0) message.ext = { herald };
    // History is kept per channel, so a pattern cannot be resumed: say so rather than lose silently.
    const patternGap = pattern && afterLoss && wanted.resumes;
    return connection.request(message).then(
      (reply) => {
        if (connection !== this.current() || this.#wanted.get(channel) !== wanted) return;
        if (reply.successful !== true && reply.advice?.reconnect === 'retry') {
          // Not a refusal: the server cannot do it just now (its engine is out of reach) and did
          // nothing. Dropped, a renewed subscription would stop without a word.
          return this.#subscribeLater(connection, channel, start, afterLoss, reply.advice.interval);
        }
        if (reply.successful !== true) {
          this.#wanted.delete(channel);
          // The grant no longer holds (withdrawn, expired): the server subscription is over.
          if (wanted.grant !== undefined) this.downstream.serverSubscription(channel, false);
          if (wanted.own) this.downstream.subscribed(channel, new Error(`subscribe to ${channel} refused: ${reply.error ?? 'no reason given'}`));
          return;
        }
        wanted.confirmed = true;
        wanted.resumes = true;
        const herald = reply.ext?.herald;
        if (typeof herald?.grant === 'string' && wanted.grant !== undefined) {
          wanted.grant = herald.grant;
          this.downstream.serverSubscription(channel, true, herald.grant);
        }
        if (typeof herald?.last === 'string') wanted.since = maxId(wanted.since, herald.last);
        if (herald?.gap === true || patternGap) this.downstream.gap(channel);
        this.downstream.subscribed(channel);
      },
      () => undefined, // the connection is gone; the next one subscribes again
    );
  }

  /** Asks again after `intervalMs` (the server's advice), unless the session or the want has gone meanwhile. */
  #subscribeLater(connection: Connection, channel: string, start: Start, afterLoss: boolean, intervalMs = 0): Promise<void> {
    const wanted = this.#wanted.get(channel);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#retries.delete(timer);
        if (connection !== this.current() || this.#wanted.get(channel) !== wanted) return resolve();
        resolve(this.#subscribe(connection, channel, start, afterLoss));
      }, Math.max(0, intervalMs));
      this.#retries.add(timer);
    });
  }
}

/** The later of two message ids (ids compare as strings). */
function maxId(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}
