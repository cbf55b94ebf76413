/**
 * @module
 * One Bayeux session over one transport: the handshake, the connect loop, and requests matched to
 * their replies by id. It never reconnects by itself: when the transport breaks, a request goes
 * unanswered, or the server advises otherwise, it ends and says why (`onLost`); `link.ts` decides
 * what comes next.
 */
import type { PollSchedule } from './poll-schedule.js';
import type { Advice, ConnectionType, Message, ServerSubscriptionNotice } from './protocol.js';
import { isDelivery, mergeAdvice, serverSubscriptionOf } from './protocol.js';
import type { Transport, TransportSink } from './transports/transport.js';
import { TransportError } from './transports/transport.js';

export type Reconnect = 'retry' | 'handshake' | 'none';

export interface ConnectionOptions {
  /** How long a reply may take beyond the server's hold time before the transport is deemed broken. */
  readonly maxNetworkDelayMs: number;
  /** `ext` of the handshake (Herald's ids are always asked for). */
  readonly handshakeExt: Record<string, unknown>;
  /** Where the token sent with each handshake comes from (asked again on every handshake). */
  readonly token?: TokenSource | undefined;
  /** Every type this client could use: the handshake offers them all, as Bayeux clients do. */
  readonly offeredTypes: readonly ConnectionType[];
  /**
   * Interval polling (the last resort where held requests are cut): every connect asks to be
   * answered at once (`advice.timeout: 0`) and the next one waits as `poll` says.
   */
  readonly poll?: PollSchedule | undefined;
}

/** A token, or a function that fetches a fresh one (called on every handshake). */
export type TokenSource = string | (() => string | Promise<string>);

export interface ConnectionHandlers {
  onDelivery(message: Message): void;
  /** Channels whose messages the server had to drop (a slow consumer): they have a gap. */
  onGaps?(channels: string[]): void;
  /** The server put the session on a channel, or took it off. */
  onServerSubscription?(notice: ServerSubscriptionNotice): void;
  /**
   * A hold ended — a held connect, or the event stream: answered after `heldMs`, or `cut` (broken
   * before its time was up). Told before `onLost`, so a run of cuts can be judged then.
   */
  onHoldEnded?(heldMs: number, cut: boolean): void;
  /** Called once, when the session can no longer be used. */
  onLost(reconnect: Reconnect, error: Error, advice: Advice): void;
}

/** A handshake the server refused. */
export class HandshakeError extends Error {
  constructor(
    readonly reply: Message,
    readonly reconnect: Reconnect,
  ) {
    super(`handshake refused: ${reply.error ?? 'no reason given'}`);
    this.name = 'HandshakeError';
  }
}

interface Pending {
  resolve(reply: Message): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** A connect, sent: counted in #connectsOut until answered. */
  connect?: boolean;
  /** Part of a request whose reply may carry deliveries (piggyback): counted in #inSequence until answered. */
  inSequence?: boolean;
}

export class Connection implements TransportSink {
  clientId: string | undefined;
  /** The server's latest timings; sent again on the next connect. */
  advice: Advice = { reconnect: 'retry', interval: 0, timeout: 30_000 };
  readonly #pending = new Map<string, Pending>();
  #transport!: Transport;
  #nextId = 0;
  #outbox: Message[] = [];
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  /** The connect the server may be holding. */
  #heldConnect: Promise<Message> | undefined;
  /** Connects sent and not answered yet (held, or being answered at once). */
  #connectsOut = 0;
  /** Since when a hold (held connect, or the event stream) has been under way, and how long it may last. */
  #hold: { since: number; forMs: number } | undefined;
  #stopWaking: (() => void) | undefined;
  #ended = false;
  /** Saying goodbye: no more connects. */
  #closing = false;
  #handlers: ConnectionHandlers | undefined;
  /** The server puts deliveries on replies other than connects' when asked (its handshake reply said so). */
  #piggyback = false;
  /**
   * Replies out that may carry deliveries besides connects' (a marked batch's, a herald.fetch's).
   * While any is, no connect goes and no other request is marked: two replies carrying deliveries
   * could arrive in either order, and what arrives after a newer id of its channel is dropped.
   */
  #inSequence = 0;
  /** Connects waiting for those replies. */
  #waitingConnects: (() => void)[] = [];

  constructor(
    makeTransport: (sink: TransportSink) => Transport,
    private readonly options: ConnectionOptions,
  ) {
    this.#transport = makeTransport(this);
  }

  get type(): ConnectionType {
    return this.#transport.type;
  }

  /** Interval polling: no connect is ever held. */
  get polling(): boolean {
    return this.options.poll !== undefined;
  }

  /**
   * True while a connect is on its way or held: the server has a reply on which to send
   * deliveries. False between two polls (or two long-polls): deliveries wait on the server.
   */
  get connectOutstanding(): boolean {
    return this.#connectsOut > 0 || this.#waitingConnects.length > 0;
  }

  /**
   * Handshakes, starts the transport and completes the first connect. Rejects (and ends) if any
   * step fails; from then on the connect loop runs and problems reach `handlers.onLost`.
   */
  async open(handlers: ConnectionHandlers): Promise<Message> {
    // Set first: a message arriving with the first connect's reply is already a delivery.
    this.#handlers = handlers;
    try {
      const source = this.options.token;
      const token = typeof source === 'function' ? await source() : source;
      const { herald } = this.options.handshakeExt;
      // Herald's ids are always asked for; the caller's ext.herald (an anonymous page's info) rides along.
      // Piggyback: this connection takes its replies in sequence (see #inSequence).
      const ext: Record<string, unknown> = { ...this.options.handshakeExt, herald: { ...(typeof herald === 'object' && herald !== null ? herald : {}), ids: true, piggyback: true } };
      if (token !== undefined && token !== '') ext.auth = { token };
      const reply = await this.request({
        channel: '/meta/handshake',
        version: '1.0',
        minimumVersion: '1.0',
        supportedConnectionTypes: [...this.options.offeredTypes],
        ext,
      });
      if (reply.successful !== true || typeof reply.clientId !== 'string') {
        throw new HandshakeError(reply, reply.advice?.reconnect === 'none' ? 'none' : 'handshake');
      }
      this.clientId = reply.clientId;
      this.#piggyback = reply.ext?.herald?.piggyback === true;
      const offered = reply.supportedConnectionTypes;
      if (Array.isArray(offered) && !offered.includes(this.type)) throw new TransportError(`the server does not offer ${this.type}`);
      if (this.#transport.started !== undefined) {
        await within(this.#transport.started(reply.clientId), this.options.maxNetworkDelayMs, `${this.type} did not open`);
        // The stream is this session's hold: a proxy that cuts it after N seconds cuts it again.
        this.#hold = { since: Date.now(), forMs: Infinity };
      }
      // The first connect is answered at once: it proves the whole path works before we rely on it.
      const connected = await this.request(this.#connectMessage(0), 0);
      if (connected.successful !== true) throw new HandshakeError(connected, mergeAdvice({ reconnect: 'handshake' }, connected.advice).reconnect!);
      this.#scheduleConnect(connected);
      // A page waking (shown again, its user back) should not wait out a long poll interval.
      this.#stopWaking = this.options.poll?.onWake(() => this.#connectSooner());
      return reply;
    } catch (error) {
      this.#end();
      throw error;
    }
  }

  /**
   * Sends a message and resolves with the server's reply to it. `holdMs`: how long the server may
   * hold it (a connect), on top of the network allowance.
   */
  request(message: Message, holdMs = 0): Promise<Message> {
    if (this.#ended) return Promise.reject(new TransportError('the connection has ended'));
    const id = String(++this.#nextId);
    const outgoing: Message = { ...message, id };
    if (this.clientId !== undefined && message.channel !== '/meta/handshake') outgoing.clientId = this.clientId;
    const replyWithinMs = holdMs + this.options.maxNetworkDelayMs;
    return new Promise<Message>((resolve, reject) => {
      const pending: Pending = { resolve, reject, timer: undefined };
      this.#pending.set(id, pending);
      const timeOut = () => setTimeout(() => this.fail(new TransportError(`no reply to ${message.channel} within ${replyWithinMs} ms`)), replyWithinMs);
      if (message.channel === '/meta/connect') {
        // A held connect travels alone, so nothing else waits behind it; and after any reply that
        // may carry deliveries, so that its own come after those.
        const send = () => {
          if (this.#ended || !this.#pending.has(id)) return;
          pending.connect = true;
          this.#connectsOut++;
          pending.timer = timeOut();
          this.#transport.send([outgoing], replyWithinMs);
        };
        if (this.#inSequence > 0) this.#waitingConnects.push(send);
        else send();
        return;
      }
      pending.timer = timeOut();
      this.#outbox.push(outgoing);
      if (this.#outbox.length === 1) queueMicrotask(() => this.#flush());
    });
  }

  #flush(): void {
    const batch = this.#outbox;
    this.#outbox = [];
    if (batch.length === 0 || this.#ended) return;
    if (this.#mayTakeDeliveries()) {
      // Its reply may carry what is queued for the session (ext/piggyback.ts on the server).
      const [first] = batch;
      batch[0] = { ...first!, ext: { ...first!.ext, herald: { ...first!.ext?.herald, piggyback: true } } };
      for (const message of batch) this.#pending.get(message.id!)!.inSequence = true;
      this.#inSequence += batch.length;
    }
    this.#transport.send(batch, this.options.maxNetworkDelayMs);
  }

  /**
   * Takes the one place for a reply that may carry deliveries besides connects' (for
   * `herald.fetch`), if it is free: no connect is out and no other such reply is. Returns the
   * session to name and a function to call once that reply is in (or given up on); undefined
   * when the place is taken (or the server does not piggyback).
   */
  takeDeliveriesSlot(): { clientId: string; release: () => void } | undefined {
    if (!this.#mayTakeDeliveries() || this.clientId === undefined) return undefined;
    this.#inSequence++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#leaveSequence();
    };
    return { clientId: this.clientId, release };
  }

  #mayTakeDeliveries(): boolean {
    return this.#piggyback && !this.#ended && !this.#closing && !this.connectOutstanding && this.#inSequence === 0;
  }

  /** One reply that may have carried deliveries is in: once none is out, the connects held back go. */
  #leaveSequence(): void {
    if (--this.#inSequence > 0) return;
    for (const send of this.#waitingConnects.splice(0)) send();
  }

  receive(messages: Message[]): void {
    for (const message of messages) {
      if (this.#ended) return;
      const pending = typeof message.id === 'string' ? this.#pending.get(message.id) : undefined;
      if (message.advice !== undefined) this.advice = mergeAdvice(this.advice, message.advice);
      if (pending !== undefined && message.successful !== undefined) {
        this.#pending.delete(message.id!);
        clearTimeout(pending.timer);
        if (pending.connect === true) this.#connectsOut--;
        if (pending.inSequence === true) this.#leaveSequence();
        pending.resolve(message);
        // Any reply may send the client back to the start (an unknown session, say); a refused
        // handshake is open()'s to judge.
        if (message.channel !== '/meta/handshake') this.#obeyAdvice(message);
      } else if (isDelivery(message)) {
        this.options.poll?.delivered();
        this.#handlers?.onDelivery(message);
      } else {
        const notice = serverSubscriptionOf(message);
        if (notice !== undefined) this.#handlers?.onServerSubscription?.(notice);
      }
    }
  }

  fail(error: Error): void {
    const hold = this.#hold;
    if (hold !== undefined && !this.#ended) {
      // Broken before its time was up (a timeout of ours comes after it, and is no cut).
      const heldMs = Date.now() - hold.since;
      if (heldMs < hold.forMs) this.#handlers?.onHoldEnded?.(heldMs, true);
    }
    this.#lose('retry', error);
  }

  /** Says goodbye to the server (best effort), then ends: its session goes now rather than at expiry. */
  disconnect(): void {
    if (this.#ended || this.#closing) return;
    this.#closing = true;
    this.#handlers = undefined;
    this.#stopWaking?.();
    clearTimeout(this.#connectTimer);
    this.#goodbye();
  }

  /**
   * Ends a session another has replaced: one last connect, answered at once, hands over whatever
   * the server still queues for it (published before the replacement subscribed); then goodbye.
   */
  retire(): Promise<void> {
    if (this.#ended || this.#closing) return Promise.resolve();
    this.#closing = true;
    clearTimeout(this.#connectTimer);
    // Over HTTP the connect it replaces answers on another request, maybe later, maybe carrying
    // messages: both are awaited before the handlers go.
    const last = [this.request(this.#connectMessage(0))];
    if (this.#heldConnect !== undefined) last.push(this.#heldConnect);
    return Promise.allSettled(last).then(() => {
      this.#handlers = undefined;
      this.#goodbye();
    });
  }

  #goodbye(): void {
    if (this.#ended) return;
    if (this.clientId === undefined) {
      this.#end();
      return;
    }
    // The transport stays open until the goodbye is answered (or times out), so it is not cut off.
    const end = () => this.#end();
    this.request({ channel: '/meta/disconnect' }).then(end, end);
    this.#flush();
  }

  /** A reply that tells the client to start over ends the connection. */
  #obeyAdvice(reply: Message): void {
    const reconnect = reply.advice?.reconnect;
    if (reconnect === 'handshake' || reconnect === 'none') this.#lose(reconnect, new Error(reply.error ?? `the server advised ${reconnect}`));
  }

  #connectMessage(timeoutMs: number | undefined): Message {
    const message: Message = { channel: '/meta/connect', connectionType: this.type };
    if (timeoutMs !== undefined) message.advice = { timeout: timeoutMs };
    return message;
  }

  #scheduleConnect(reply: Message): void {
    if (this.#ended || this.#closing) return;
    if (reply.successful !== true) {
      this.#lose('retry', new Error(reply.error ?? 'connect failed'));
      return;
    }
    const interval = this.options.poll?.nextDelayMs(this.advice) ?? Math.max(0, this.advice.interval ?? 0);
    this.#connectTimer = setTimeout(() => this.#connect(), interval);
  }

  /** Polls now (within the server's interval) rather than when the timer says. */
  #connectSooner(): void {
    if (this.#connectTimer === undefined || this.#ended || this.#closing) return;
    clearTimeout(this.#connectTimer);
    this.#connectTimer = setTimeout(() => this.#connect(), Math.max(0, this.advice.interval ?? 0));
  }

  #connect(): void {
    this.#connectTimer = undefined;
    if (this.#ended || this.#closing) return;
    const polling = this.options.poll !== undefined;
    const hold = this.type === 'eventsource' || polling ? 0 : (this.advice.timeout ?? 30_000);
    const held = this.request(this.#connectMessage(polling ? 0 : undefined), hold);
    this.#heldConnect = held;
    const since = Date.now();
    if (hold > 0) this.#hold = { since, forMs: hold };
    held.then(
      (reply) => {
        if (this.#heldConnect === held) this.#heldConnect = undefined;
        if (hold > 0) {
          this.#hold = undefined;
          this.#handlers?.onHoldEnded?.(Date.now() - since, false);
        }
        const gaps = reply.ext?.herald?.gaps;
        if (Array.isArray(gaps)) this.#handlers?.onGaps?.(gaps.filter((channel): channel is string => typeof channel === 'string'));
        this.#scheduleConnect(reply);
      },
      () => undefined, // the failure has already ended the connection
    );
  }

  #lose(reconnect: Reconnect, error: Error): void {
    if (this.#ended) return;
    const handlers = this.#handlers;
    const advice = this.advice;
    this.#end(error);
    handlers?.onLost(reconnect, error, advice);
  }

  #end(error: Error = new TransportError('the connection has ended')): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#handlers = undefined;
    this.#stopWaking?.();
    if (this.#connectTimer !== undefined) clearTimeout(this.#connectTimer);
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.#pending.clear();
    this.#outbox = [];
    this.#waitingConnects = [];
    this.#transport.close();
  }
}

/** `promise`, or a TransportError if it takes longer than `ms` (a proxy that holds a stream back). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TransportError(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
