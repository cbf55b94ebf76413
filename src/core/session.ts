/**
 * @module
 * One client's server-side state: its subscriptions, a bounded queue of deliveries, and at most one
 * held request (a long-poll waiting for messages, or a push connection). Knows nothing of HTTP or
 * of Bayeux: transports and protocol handlers drive it.
 */
import type { Principal } from './access.js';
import type { Clock } from './clock.js';
import type { CloseReason } from './close-reasons.js';
import type { Deadline } from './deadlines.js';
import { publicIdOf } from './ids.js';
import { RateBucket } from './limits.js';
import type { Delivery } from './message.js';
import type { ResumeReason, SessionHooks, SessionLimits, Stream, Waiter } from './session-contracts.js';
import { SessionExtras } from './session-extras.js';
import type { SubscriptionGuard } from './subscription-guard.js';
import { Subscriptions } from './subscriptions.js';

export type { CloseReason } from './close-reasons.js';
export type { ResumeReason, SessionHooks, SessionLimits, SlowConsumerPolicy, Stream, Waiter } from './session-contracts.js';

/**
 * The queue of a session with nothing queued: one shared empty array rather than one per session
 * (frozen, so that a push to it fails loudly instead of queueing for everyone).
 */
const NOTHING_QUEUED: Delivery[] = Object.freeze([]) as unknown as Delivery[];

/** Bits of Session.#flags: yes-or-no state in one small integer, where a field each costs 8 bytes a session. */
const IN_PRESENCE = 1;
const MESSAGE_IDS = 2;
const CONNECT_ONLY = 4;
const PIGGYBACKS = 8;
const READY_PENDING = 16;

/**
 * Lean by design (an idle connection holds one): what most sessions never use lives in a
 * SessionExtras made on first use, one subscription needs no Set (Subscriptions), flags share one
 * field, and what every session of a store shares is one object (SessionHooks).
 */
export class Session {
  readonly subscriptions = new Subscriptions();
  /** The verified token the session acts with; undefined = anonymous. */
  principal: Principal | undefined;
  #flags = IN_PRESENCE;
  /**
   * Deliveries sent but kept to be sent again until the client acknowledges them (acknowledged
   * delivery): they count toward the queue limit, so a client that never acknowledges is a slow consumer.
   */
  unacknowledged = 0;
  /** Connect requests answered so far: the first is always answered at once. */
  connects = 0;
  /** Set once the session is closed; a closed session accepts nothing. */
  closeReason: CloseReason | undefined;
  /** Last moment the client showed life; expiry counts from here while nothing is held. */
  lastActivity: number;

  /** The network address the session was opened from, for the per-address limit. */
  address: string | undefined;
  /** How the client is connected, for operators (inspection): a Bayeux connection type, or `rest-…` for `/sub`. */
  transport: string | undefined;
  /** When the session was opened, in ms since the epoch. */
  readonly openedAt: number;

  /** Every subscription computes it (presence): not an extra. */
  #publicId: string | undefined;
  #extras: SessionExtras | undefined;
  #queue: Delivery[] = NOTHING_QUEUED;
  /** What the queued deliveries weigh, each counted in full (to find the heaviest queues). */
  #queuedBytes = 0;
  #waiter: Waiter | undefined;
  #stream: Stream | undefined;
  /** The held request's deadline (Deadlines), if any. */
  #holdDeadline: Deadline | undefined;
  /** Resumes in progress: while any is, nothing leaves the queue (see holdBack). */
  #heldBack = 0;

  constructor(
    readonly id: string,
    private readonly hooks: SessionHooks,
  ) {
    this.lastActivity = hooks.clock.now();
    this.openedAt = this.lastActivity;
  }

  /** Shown in presence while subscribed (a REST poll that is one request per message, anonymous, is not: each would be a new member). */
  get inPresence(): boolean {
    return (this.#flags & IN_PRESENCE) !== 0;
  }

  set inPresence(on: boolean) {
    this.#flag(IN_PRESENCE, on);
  }

  /** Deliveries carry their message id, so the client can resume from it later. */
  get messageIds(): boolean {
    return (this.#flags & MESSAGE_IDS) !== 0;
  }

  set messageIds(on: boolean) {
    this.#flag(MESSAGE_IDS, on);
  }

  /** Deliveries ride connect replies only, never a push stream (acknowledged delivery needs it). */
  get connectOnly(): boolean {
    return (this.#flags & CONNECT_ONLY) !== 0;
  }

  set connectOnly(on: boolean) {
    this.#flag(CONNECT_ONLY, on);
  }

  /**
   * The client takes deliveries on the replies to its other requests too, while no connect is
   * held (it said so at the handshake, and marks the requests it can take them on).
   */
  get piggybacks(): boolean {
    return (this.#flags & PIGGYBACKS) !== 0;
  }

  set piggybacks(on: boolean) {
    this.#flag(PIGGYBACKS, on);
  }

  #flag(bit: number, on: boolean): void {
    this.#flags = on ? this.#flags | bit : this.#flags & ~bit;
  }

  get #limits(): SessionLimits {
    return this.hooks.limits;
  }

  get #clock(): Clock {
    return this.hooks.clock;
  }

  /**
   * How others may name this session (presence): derived from the clientId, from which it
   * cannot be turned back, so showing it grants nothing.
   */
  get publicId(): string {
    return (this.#publicId ??= publicIdOf(this.id));
  }

  /** The subscriptions that reach only some channels of their pattern, each with its check (hub.ts). */
  get guards(): Map<string, SubscriptionGuard> | undefined {
    return this.#extras?.guards;
  }

  set guards(guards: Map<string, SubscriptionGuard> | undefined) {
    if (guards !== undefined || this.#extras !== undefined) this.#more().guards = guards;
  }

  /** The `BAYEUX_BROWSER` cookie the session was created under, if any. */
  get browserId(): string | undefined {
    return this.#extras?.browserId;
  }

  set browserId(browserId: string | undefined) {
    if (browserId !== undefined || this.#extras !== undefined) this.#more().browserId = browserId;
  }

  /**
   * What an anonymous session shows as its presence `info` — a handle its page chose at the
   * handshake (a chat name), unverified: members stay `anonymous`, keyed by their session.
   */
  get handle(): unknown {
    return this.#extras?.handle;
  }

  set handle(handle: unknown) {
    if (handle !== undefined || this.#extras !== undefined) this.#more().handle = handle;
  }

  /** An operator's words on why it was closed (control plane), if any. */
  get closeNote(): string | undefined {
    return this.#extras?.closeNote;
  }

  #more(): SessionExtras {
    return (this.#extras ??= new SessionExtras());
  }

  get queueLength(): number {
    return this.#queue.length;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  get isHeld(): boolean {
    return this.#waiter !== undefined;
  }

  /** A held request or an attached stream: someone is listening, so the session does not expire. */
  get isAttended(): boolean {
    return this.#waiter !== undefined || this.#stream !== undefined;
  }

  get stream(): Stream | undefined {
    return this.#stream;
  }

  get isClosed(): boolean {
    return this.closeReason !== undefined;
  }

  touch(): void {
    this.lastActivity = this.#clock.now();
  }

  /** Queues a delivery; false when the queue is full and the session must close (slow consumer). */
  enqueue(delivery: Delivery): boolean {
    if (this.closeReason !== undefined) return true;
    // A presence event has no id: nothing replayed can hold it.
    if (delivery.message.event === undefined && this.#extras?.replayed(delivery.message.channel, delivery.message.id) === true) return true;
    if (this.#queue.length + this.unacknowledged >= this.#limits.maxQueue) {
      // What was sent cannot be dropped quietly: when it alone fills the queue, the session closes.
      if (!this.canDropOldest || this.#queue.length === 0) return false;
      this.#dropOldest(1);
    }
    if (this.#queue === NOTHING_QUEUED) this.#queue = [delivery];
    else this.#queue.push(delivery);
    this.#held(delivery);
    this.#signalReady();
    return true;
  }

  /**
   * Tells the client, at the next flush, that `channel` (a name or pattern) lost messages it
   * should have had (Engine.onGap): through the stream if it can say so, else in a connect reply.
   */
  markGap(channel: string): void {
    if (this.closeReason !== undefined) return;
    (this.#more().gaps ??= new Set()).add(channel);
    this.#signalReady();
  }

  /** Whether the slow-consumer policy drops this session's oldest deliveries rather than closing it. */
  get canDropOldest(): boolean {
    return this.#limits.slowConsumer === 'drop-oldest' && this.messageIds;
  }

  /** Drops the oldest `count` deliveries (slow-consumer policy drop-oldest); the client is told of the gap. */
  dropOldest(count: number): void {
    if (this.closeReason !== undefined || count <= 0) return;
    this.#dropOldest(Math.min(count, this.#queue.length));
    this.#signalReady();
  }

  #dropOldest(count: number): void {
    if (count === 0) return;
    const dropped = this.#queue.splice(0, count);
    const gaps = (this.#more().gaps ??= new Set());
    for (const delivery of dropped) gaps.add(delivery.message.channel);
    this.#released(dropped);
    for (let i = 0; i < count; i++) this.hooks.onDropped?.(this);
  }

  /** The channels that lost deliveries since the last call (see markGap, policy drop-oldest), and forgets them. */
  takeGaps(): string[] {
    const gaps = this.#extras?.gaps;
    if (gaps === undefined) return [];
    this.#extras!.gaps = undefined;
    return [...gaps];
  }

  get hasGaps(): boolean {
    return this.#extras?.gaps !== undefined;
  }

  /** Whether the client's publish `id` was stored recently (a resend, to acknowledge, not repeat). */
  publishedRecently(id: string | number): boolean {
    return this.#extras?.publishedRecently(id) === true;
  }

  /** Records a publish of the client's as stored (call only once the engine accepted it). */
  rememberPublish(id: string | number): void {
    this.#more().rememberPublish(id);
  }

  /** Messages per second the client may send; 0 = unlimited. */
  get messageRate(): number {
    return this.#limits.messageRate;
  }

  /** Counts one message from the client against its rate; false when it is sending too fast. */
  allowMessage(): boolean {
    if (this.#limits.messageRate <= 0) return true;
    const extras = this.#more();
    extras.rate ??= new RateBucket(this.#limits.messageRate, this.#limits.messageRate * 2, this.#clock.now());
    return extras.rate.take(this.#clock.now());
  }

  /**
   * Puts messages from history ahead of what is queued (a resume), dropping queued ones they
   * already cover: ids increase within a channel, so anything queued on the same channel up to the
   * last replayed id is a duplicate — and so is one that arrives live later (history can be read
   * before pub/sub brings a message to this node), until a newer one has.
   */
  replay(deliveries: Delivery[]): void {
    const last = deliveries[deliveries.length - 1];
    if (last === undefined || this.closeReason !== undefined) return;
    const { channel, id } = last.message;
    (this.#more().replayedUpTo ??= new Map()).set(channel, id);
    // Replayed history is not a fresh delivery: its age says nothing about latency.
    for (const delivery of deliveries) delivery.sent = true;
    const newer: Delivery[] = [];
    for (const queued of this.#queue) {
      if (queued.message.channel !== channel || queued.message.id > id || queued.message.event !== undefined) newer.push(queued);
      else this.#released([queued]);
    }
    for (const delivery of deliveries) this.#held(delivery);
    this.#queue = deliveries.concat(newer);
    this.#signalReady();
  }

  /** Sends everything from now on to `stream`, replacing any previous one; what is queued goes first. */
  attachStream(stream: Stream): void {
    if (this.closeReason !== undefined || this.connectOnly) return;
    if (this.#stream !== stream) this.#streamEnded();
    this.#stream = stream;
    this.#signalReady();
  }

  detachStream(stream: Stream): void {
    if (this.#stream !== stream) return;
    this.#streamEnded();
    this.#stream = undefined;
    this.touch();
  }

  /**
   * A connect reply leaves now, carrying `items` (deliveries, gap signals) that are lost with it if
   * its connection dies: the client's next connect shows it had everything pushed until now.
   */
  connectAnswered(items: number): void {
    if (this.#stream?.carriesConnects === true && items > 0) this.#more().pushed += items;
    const extras = this.#extras;
    if (extras !== undefined) extras.pushedBeforeReply = extras.pushed;
  }

  /**
   * A connect arrived, on `via` (the push connection it came on; undefined: none). False when
   * deliveries may have been lost on the way: a stream that carries connects ended before the
   * client showed it had what was pushed to it, or the client now talks on another connection
   * while that stream still holds such deliveries (its connection likely died unnoticed). The
   * client cannot tell which, so the caller ends the session and the client resumes from history.
   */
  connectArrived(via: Stream | undefined): boolean {
    const extras = this.#extras;
    if (extras === undefined) return true;
    if (this.#stream !== undefined && this.#stream === via) extras.pushedConfirmed = extras.pushedBeforeReply;
    else if (extras.pushed > extras.pushedConfirmed) extras.lostInFlight = true;
    return !extras.lostInFlight;
  }

  #streamEnded(): void {
    this.#extras?.streamEnded();
  }

  /**
   * While a resume reads history, nothing leaves: a live message sent now would reach the client
   * before the older ones being replayed, and the client would drop those as already seen.
   * Every holdBack() is paired with a release().
   */
  holdBack(): void {
    this.#heldBack++;
  }

  release(): void {
    if (--this.#heldBack === 0) this.#signalReady();
  }

  /** Takes everything queued, oldest first (nothing while a resume holds it back). */
  drain(): Delivery[] {
    if (this.#heldBack > 0 || this.#queue.length === 0) return [];
    const taken = this.#queue;
    this.#queue = NOTHING_QUEUED;
    // One pass over what leaves (this runs per delivery): released from the queue, and the first send of each noted.
    const { memory, onFirstSent } = this.hooks;
    for (const delivery of taken) {
      this.#queuedBytes -= delivery.bytes;
      memory?.release(delivery);
      if (delivery.sent || onFirstSent === undefined) continue;
      delivery.sent = true;
      onFirstSent(delivery);
    }
    return taken;
  }

  /**
   * Holds `waiter` until messages arrive, `timeoutMs` passes, another hold replaces it, or the
   * session closes. A previous waiter is resumed with 'replaced' first.
   */
  hold(waiter: Waiter, timeoutMs: number): void {
    if (this.closeReason !== undefined) {
      // Closed while the request was on its way in: answer it now rather than hold a dead session.
      waiter.resume('closed');
      return;
    }
    this.#resume('replaced');
    this.#waiter = waiter;
    this.#holdDeadline = this.hooks.holds.add(this, timeoutMs);
    this.#signalReady();
  }

  /** The held request's timeout passed (Deadlines). */
  deadlinePassed(): void {
    this.#holdDeadline = undefined;
    this.#resume('timeout');
  }

  /** The holder went away (its socket closed): forget it without resuming it. False if it was not (or no longer) held. */
  cancelHold(waiter: Waiter): boolean {
    if (this.#waiter !== waiter) return false;
    this.#clearHold();
    this.touch();
    return true;
  }

  /** Called by the flush scheduler: sends what is queued to the stream, or resumes the held request. */
  flush(): void {
    this.#flag(READY_PENDING, false);
    if ((this.#queue.length === 0 && !this.hasGaps) || this.#heldBack > 0) return;
    const stream = this.#stream;
    if (stream === undefined) {
      this.#resume('messages');
      return;
    }
    if (this.hasGaps) {
      // Told before what follows the loss. A stream that cannot say it leaves it to a connect
      // reply: answer the held connect now rather than at its timeout.
      if (stream.gap !== undefined) for (const channel of this.takeGaps()) stream.gap(channel);
      else this.#resume('messages');
      if (this.#queue.length === 0) return;
    }
    const deliveries = this.drain();
    if (stream.push(deliveries)) {
      if (stream.carriesConnects === true) this.#more().pushed += deliveries.length;
      return;
    }
    // The stream's connection is going away, and a request held on it likely is too: keep the
    // messages for whichever connect comes next rather than hand them to a dying one.
    for (const delivery of deliveries) this.#held(delivery);
    this.#queue = deliveries.concat(this.#queue);
    this.#streamEnded();
    this.#stream = undefined;
    this.touch();
  }

  /** Marks the session closed and resumes any held request; the store drops the rest. */
  close(reason: CloseReason, note?: string): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    if (note !== undefined) this.#more().closeNote = note;
    const told = this.#waiter !== undefined;
    this.#resume('closed');
    this.#released(this.#queue);
    this.#queue = NOTHING_QUEUED;
    this.subscriptions.clear();
    this.guards = undefined;
    const stream = this.#stream;
    this.#stream = undefined;
    stream?.sessionClosed(reason, note, told);
  }

  #held(delivery: Delivery): void {
    this.#queuedBytes += delivery.bytes;
    this.hooks.memory?.hold(delivery);
  }

  #released(deliveries: readonly Delivery[]): void {
    const memory = this.hooks.memory;
    for (const delivery of deliveries) {
      this.#queuedBytes -= delivery.bytes;
      memory?.release(delivery);
    }
  }

  #signalReady(): void {
    if ((this.#flags & READY_PENDING) !== 0 || this.#heldBack > 0 || (this.#queue.length === 0 && !this.hasGaps) || (this.#waiter === undefined && this.#stream === undefined)) return;
    this.#flag(READY_PENDING, true);
    this.hooks.onReady(this);
  }

  #resume(reason: ResumeReason): void {
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    this.#clearHold();
    this.touch();
    waiter.resume(reason);
  }

  #clearHold(): void {
    if (this.#holdDeadline !== undefined) this.hooks.holds.cancel(this.#holdDeadline);
    this.#holdDeadline = undefined;
    this.#waiter = undefined;
  }
}
