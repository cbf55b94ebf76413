/**
 * @module
 * Local fan-out: which of this node's sessions subscribe to what, and putting each message the
 * engine hands over onto the queue of every matching session — encoded once, shared by all.
 */
import { expandChannel } from './channel.js';
import { ChannelIndex } from './channel-index.js';
import type { Engine } from './engine.js';
import { Delivery } from './message.js';
import type { Message } from './message.js';
import { presenceJoin } from './presence.js';
import type { PresenceEvents } from './presence-events.js';
import type { Session } from './session.js';
import type { SessionStore } from './session-store.js';
import { guardsAdmit } from './subscription-guard.js';
import type { SubscriptionGuard, Verdicts } from './subscription-guard.js';

export interface HubErrorListener {
  (error: unknown, context: string): void;
}

/** Fan-out counts kept for publishers to collect; bounded, as messages from other nodes are never collected. */
const RECIPIENT_COUNTS_KEPT = 1024;

/** Told when a session subscribes to or leaves a channel or pattern (`herald.on('subscribe' | 'unsubscribe')`). */
export type SubscriptionListener = (session: Session, pattern: string, subscribed: boolean) => void;

export class Hub {
  /** Join/leave events (presence-events.ts), when the server has any channel that opts in. */
  presenceEvents: PresenceEvents | undefined;
  readonly #subscriptionListeners: SubscriptionListener[] = [];
  readonly #index = new ChannelIndex<Session>();
  /** Sessions with at least one guarded subscription: while none, fan-out skips the guard checks. */
  #guardedSessions = 0;
  /** Recipients of each recent message, counted during its fan-out, by message id. */
  readonly #recipientCounts = new Map<string, number>();
  /** Engine subscriptions under way, per pattern: later subscribers of the pattern wait for them too. */
  readonly #subscribing = new Map<string, Promise<void>>();
  /** Messages the engine handed to this node, and deliveries queued from them (for metrics). */
  messagesIn = 0;
  deliveriesQueued = 0;

  constructor(
    private readonly engine: Engine,
    private readonly sessions: SessionStore,
    private readonly onError: HubErrorListener = () => {},
  ) {
    engine.onMessage((message, json) => this.#fanOut(message, json));
    engine.onGap((channel) => this.#markGap(channel));
    sessions.onClosed((session) => this.#forget(session));
  }

  get patternCount(): number {
    return this.#index.patternCount;
  }

  /**
   * Subscribes a session to a channel or pattern; subscribing twice only replaces the guard.
   * `guard`: the check each delivery must pass when the subscriber may read only some channels
   * under the pattern (subscription-guard.ts) — set before the subscription can deliver anything.
   */
  async subscribe(session: Session, name: string, guard?: SubscriptionGuard): Promise<void> {
    if (session.isClosed) return;
    const pattern = this.#index.shared(name);
    this.#guard(session, pattern, guard);
    if (session.subscriptions.has(pattern)) return;
    session.subscriptions.add(pattern);
    if (session.inPresence) {
      const entry = presenceJoin(session.publicId, session.principal, session.handle);
      this.#presence(pattern, true, () => this.engine.join(pattern, entry));
    }
    const added = this.#index.add(pattern, session);
    this.#told(session, pattern, true);
    if (!added) {
      // Not live before the first subscriber's engine subscription is: a message published right
      // after this one's reply would be missed. (Only then awaited: an await costs a turn even when
      // there is nothing to wait for, and a storm of subscribers to one channel pays it by the ten thousand.)
      const pending = this.#subscribing.get(pattern);
      if (pending !== undefined) await pending;
      return;
    }
    const live = this.engine.subscribe(pattern);
    this.#subscribing.set(pattern, live);
    try {
      await live;
    } finally {
      if (this.#subscribing.get(pattern) === live) this.#subscribing.delete(pattern);
    }
  }

  async unsubscribe(session: Session, pattern: string): Promise<void> {
    if (!session.subscriptions.delete(pattern)) return;
    this.#guard(session, pattern, undefined);
    if (session.inPresence) this.#presence(pattern, false, () => this.engine.leave(pattern, session.publicId));
    const last = this.#index.remove(pattern, session);
    this.#told(session, pattern, false);
    if (last) await this.engine.unsubscribe(pattern);
  }

  onSubscription(listener: SubscriptionListener): void {
    this.#subscriptionListeners.push(listener);
  }

  /** How many of this node's sessions subscribe to exactly `channel` (a name or pattern). */
  localSubscriberCount(channel: string): number {
    return this.#index.subscribersOf(channel).size;
  }

  /**
   * Queues a presence event (not a published message: no id, never stored) to the sessions
   * subscribed to exactly `channel`, those `admit` lets through.
   */
  deliverEvent(channel: string, message: Message, admit?: (session: Session) => boolean): void {
    const delivery = new Delivery(message);
    let overflowed: Session[] | undefined;
    for (const session of this.#index.subscribersOf(channel)) {
      if (admit !== undefined && !admit(session)) continue;
      if (!session.enqueue(delivery)) (overflowed ??= []).push(session);
    }
    if (overflowed !== undefined) for (const session of overflowed) this.sessions.close(session, 'queue_full');
  }

  /**
   * How many local sessions the message `id` was queued for during its fan-out (0 when it reached
   * none, or has not arrived yet), and forgets it.
   */
  takeRecipientCount(id: string): number {
    const count = this.#recipientCounts.get(id);
    if (count === undefined) return 0;
    this.#recipientCounts.delete(id);
    return count;
  }

  /** The sessions a message on `channel` reaches: every match, less those only guarded subscriptions match and refuse. */
  #recipients(channel: string): ReadonlySet<Session> {
    const found = this.#index.match(channel);
    // Most servers have no guarded subscription at all: no second walk over the recipients then.
    if (this.#guardedSessions === 0) return found;
    let patterns: string[] | undefined;
    let verdicts: Verdicts | undefined;
    let refused: Set<Session> | undefined;
    for (const session of found) {
      if (session.guards === undefined) continue;
      if (!guardsAdmit(session, channel, (patterns ??= expandChannel(channel)), (verdicts ??= new Map()))) (refused ??= new Set()).add(session);
    }
    // `found` may be the index's own set: a copy only when some must be left out.
    if (refused === undefined) return found;
    const admitted = new Set(found);
    for (const session of refused) admitted.delete(session);
    return admitted;
  }

  #guard(session: Session, pattern: string, guard: SubscriptionGuard | undefined): void {
    const guarded = session.guards !== undefined;
    if (guard !== undefined) (session.guards ??= new Map()).set(pattern, guard);
    else if (session.guards?.delete(pattern) === true && session.guards.size === 0) session.guards = undefined;
    if (guarded !== (session.guards !== undefined)) this.#guardedSessions += guarded ? -1 : 1;
  }

  #forget(session: Session): void {
    if (session.guards !== undefined) this.#guardedSessions--;
    for (const pattern of session.subscriptions) {
      if (session.inPresence) this.#presence(pattern, false, () => this.engine.leave(pattern, session.publicId));
      const last = this.#index.remove(pattern, session);
      this.#told(session, pattern, false);
      if (last) this.engine.unsubscribe(pattern).catch((error) => this.onError(error, `engine unsubscribe ${pattern}`));
    }
  }

  /**
   * Presence is best effort: a subscription does not wait for it, nor fail with it. On a channel
   * with join/leave events, a change waits for the channel's baseline (joins and leaves of one
   * session stay in order: both wait on the same promise).
   */
  #presence(pattern: string, joining: boolean, change: () => Promise<void>): void {
    const ready = this.presenceEvents?.ready(pattern, joining);
    (ready === undefined ? change() : ready.then(change)).catch((error) => this.onError(error, `presence ${joining ? 'join' : 'leave'} ${pattern}`));
  }

  #told(session: Session, pattern: string, subscribed: boolean): void {
    for (const listener of this.#subscriptionListeners) {
      try {
        listener(session, pattern, subscribed);
      } catch (error) {
        this.onError(error, `subscription listener ${pattern}`);
      }
    }
  }

  /** The engine lost messages on `channel` (a name or a pattern): each session it concerns is told. */
  #markGap(channel: string): void {
    // A session a guard keeps from the channel lost nothing on it, and is not told its name.
    const sessions = channel.endsWith('*') ? this.#index.subscribersOf(channel) : this.#recipients(channel);
    for (const session of sessions) session.markGap(channel);
  }

  #fanOut(message: Message, json: string | undefined): void {
    const delivery = new Delivery(message, json);
    let overflowed: Session[] | undefined;
    const recipients = this.#recipients(message.channel);
    this.messagesIn++;
    let queued = 0;
    for (const session of recipients) {
      if (session.enqueue(delivery)) queued++;
      else (overflowed ??= []).push(session);
    }
    this.deliveriesQueued += queued;
    this.#recipientCounts.set(message.id, queued);
    if (this.#recipientCounts.size > RECIPIENT_COUNTS_KEPT) this.#recipientCounts.delete(this.#recipientCounts.keys().next().value!);
    if (overflowed !== undefined) for (const session of overflowed) this.sessions.close(session, 'queue_full');
  }
}


