/**
 * @module
 * This tab's own connection to the server, kept alive whatever happens: it negotiates the
 * transport (best first, falling back when one cannot open), reconnects with capped exponential
 * back-off and jitter after errors, honours the server's advice, resubscribes everything on a new
 * session resuming each channel from the last message id seen, and now and then tries the better
 * transport again.
 */
import { Backoff } from './backoff.js';
import type { BackoffOptions } from './backoff.js';
import { Connection, HandshakeError } from './connection.js';
import { HoldCuts } from './hold-cuts.js';
import type { PollSchedule } from './poll-schedule.js';
import type { Reconnect, TokenSource } from './connection.js';
import type { Advice, ConnectionType, Message, ServerSubscriptionNotice } from './protocol.js';
import { messageIdOf, presenceEventOf } from './protocol.js';
import { createTransport } from './transports/create.js';
import type { TransportEnvironment } from './transports/transport.js';
import { TransportError } from './transports/transport.js';
import type { Downstream, PublishReply, Upstream } from './upstream.js';
import { fetchWithDeliveries } from './piggyback-fetch.js';
import { PublishError, sendPublishes } from './publishes.js';
import type { QueuedPublish } from './publishes.js';

export { PublishError } from './publishes.js';

export interface LinkOptions {
  readonly env: TransportEnvironment;
  /** Connection types to use, best first (already limited to what the environment has). */
  readonly transports: readonly ConnectionType[];
  readonly backoff: BackoffOptions;
  readonly random: () => number;
  readonly maxNetworkDelayMs: number;
  /** After falling back, try the better transport again after this long (doubling each time it fails); 0 = never. */
  readonly upgradeAfterMs: number;
  readonly handshakeExt: Record<string, unknown>;
  readonly token?: TokenSource | undefined;
  /**
   * Interval polling: `fallback` when held requests keep being cut (climbing back later, as from
   * any fallback), `always` from the start, or `never`.
   */
  readonly intervalPolling: IntervalPolling;
  /** When each poll goes, in interval polling. */
  readonly poll: PollSchedule;
}

export type IntervalPolling = 'fallback' | 'always' | 'never';

/** Connection types that can poll: each request ends, so a proxy that cuts held ones lets them through. */
const POLLING_TYPES: readonly ConnectionType[] = ['long-polling', 'callback-polling'];

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

const MAX_UPGRADE_DELAY_FACTOR = 16;
/**
 * A better transport that worked before is tried again this soon after a fallback: it most likely
 * failed only because the server was down when it was tried (a restart), not because the network
 * blocks it.
 */
const PROVEN_RETRY_MS = 1000;
/** A session that lasted this long was a success: the next failure starts the back-off afresh. */
const STABLE_MS = 5000;
/** Sessions cut before STABLE_MS, in a row, after which the next transport is tried. */
const SHORT_LIVED_LIMIT = 3;

export class Link implements Upstream {
  readonly #wanted = new Map<string, Wanted>();
  /** Newest message id delivered per concrete channel: where a new session resumes from. */
  readonly #lastIds = new Map<string, string>();
  readonly #publishes: QueuedPublish[] = [];
  readonly #backoff: Backoff;
  #connection: Connection | undefined;
  #index = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #upgradeTimer: ReturnType<typeof setTimeout> | undefined;
  #upgradeDelayMs: number;
  /** Transports that have carried a session in this client's life. */
  readonly #proven = new Set<ConnectionType>();
  #quickUpgradeTried = false;
  #everConnected = false;
  #adoptedAt = 0;
  /** Sessions lost soon after they opened, in a row: a transport that keeps being cut gives way. */
  #shortLived = 0;
  /** Sessions being opened (a reconnect, an upgrade): close() ends them too. */
  readonly #opening = new Set<Connection>();
  /** Subscribes the server asked to be sent again later. */
  readonly #retries = new Set<ReturnType<typeof setTimeout>>();
  /** A session taking over from another holds its messages until the other has handed over its last. */
  readonly #waiting = new Map<Connection, Message[]>();
  #closed = false;
  /** In interval polling: no connect is held (the last resort, after every transport's holds were cut). */
  #polling: boolean;
  readonly #cuts = new HoldCuts();
  /** Climbed back from interval polling, and not yet shown that held requests last now. */
  #climbedFromPolling = false;

  constructor(
    private readonly options: LinkOptions,
    private readonly downstream: Downstream,
    seedIds: ReadonlyMap<string, string> = new Map(),
  ) {
    if (options.transports.length === 0) throw new TransportError('no usable transport in this environment');
    this.#backoff = new Backoff(options.backoff, options.random);
    this.#upgradeDelayMs = options.upgradeAfterMs;
    this.#polling = options.intervalPolling === 'always';
    for (const [channel, id] of seedIds) this.#lastIds.set(channel, id);
    this.#open();
  }

  want(channel: string, since: string | undefined): void {
    const existing = this.#wanted.get(channel);
    if (existing !== undefined) existing.own = true;
    if (existing === undefined) {
      this.#wanted.set(channel, { since, confirmed: false, resumes: false, own: true });
      if (this.#connection !== undefined) void this.#subscribe(this.#connection, channel, { since });
    } else if (since !== undefined && this.#connection !== undefined) {
      // Someone new asks from an earlier point: the server replays history after it (the
      // subscription itself is unchanged; what was seen already is dropped by the client).
      void this.#subscribe(this.#connection, channel, { since });
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
    this.#connection?.request({ channel: '/meta/unsubscribe', subscription: channel }).catch(() => undefined);
  }

  serverWant(channel: string, grant: string): void {
    this.#serverSubscription({ channel, subscribed: true, grant, last: undefined }, false);
  }

  /**
   * The server subscribed this session to a channel (it is live already: no request), or took it
   * off. `live`: told by the current session (else another tab's, and this link subscribes itself).
   */
  #serverSubscription(notice: ServerSubscriptionNotice, live: boolean): void {
    const { channel } = notice;
    let wanted = this.#wanted.get(channel);
    if (!notice.subscribed) {
      if (wanted?.grant === undefined) return;
      wanted.grant = undefined;
      if (!wanted.own) {
        this.#wanted.delete(channel);
        this.#lastIds.delete(channel);
      } else if (this.#connection !== undefined) {
        // Still wanted by this client's own handlers: it asks again, under the access rules.
        void this.#subscribe(this.#connection, channel);
      }
      this.downstream.serverSubscription(channel, false);
      return;
    }
    if (wanted === undefined) {
      wanted = { since: undefined, confirmed: live, resumes: live, own: false };
      this.#wanted.set(channel, wanted);
      if (!live && this.#connection !== undefined) {
        wanted.grant = notice.grant;
        void this.#subscribe(this.#connection, channel);
      }
    }
    wanted.grant = notice.grant ?? wanted.grant;
    wanted.since = maxId(wanted.since, notice.last);
    this.downstream.serverSubscription(channel, true, wanted.grant);
  }

  /** In interval polling now. */
  get polling(): boolean {
    return this.#polling;
  }

  /**
   * A connect is on its way or held: deliveries have a reply to ride on. False between polls,
   * and while no session is open.
   */
  get connectOutstanding(): boolean {
    return this.#connection?.connectOutstanding ?? false;
  }

  publish(channel: string, data: unknown): Promise<PublishReply> {
    if (this.#closed) return Promise.reject(new PublishError('the client is closed'));
    return new Promise((resolve, reject) => {
      this.#publishes.push({ channel, data, resolve, reject });
      if (this.#connection !== undefined) this.#sendPublishes(this.#connection);
    });
  }

  fetch(fetchImpl: typeof fetch, input: RequestInfo | URL, init: RequestInit | undefined): Promise<Response> {
    const connection = this.#connection;
    if (connection === undefined) return fetchImpl(input, init);
    return fetchWithDeliveries(connection, fetchImpl, input, init, this.options.maxNetworkDelayMs);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#upgradeTimer);
    for (const timer of this.#retries) clearTimeout(timer);
    this.#retries.clear();
    this.#connection?.disconnect();
    this.#connection = undefined;
    for (const opening of this.#opening) opening.disconnect();
    this.#opening.clear();
    for (const publish of this.#publishes.splice(0)) publish.reject(new PublishError('the client is closed'));
    this.downstream.state('disconnected', {});
  }

  /** Opens a session on the current candidate; on failure falls back, or backs off and starts over. */
  #open(): void {
    if (this.#closed) return;
    this.downstream.state(this.#everConnected ? 'reconnecting' : 'connecting', {});
    let connection: Connection;
    try {
      connection = this.#connect(this.#polling ? this.#pollingType() : this.options.transports[this.#index]!, this.#polling);
    } catch (error) {
      this.#failed(error as Error, 'retry');
      return;
    }
    this.#opening.add(connection);
    connection.open(this.#handlersFor(connection)).then(
      () => {
        this.#opening.delete(connection);
        this.#adopt(connection);
      },
      (error: Error) => {
        this.#opening.delete(connection);
        this.#failed(error, error instanceof HandshakeError ? error.reconnect : 'retry');
      },
    );
  }

  #connect(type: ConnectionType, polling = false): Connection {
    const { env, maxNetworkDelayMs, handshakeExt, token } = this.options;
    const poll = polling ? this.options.poll : undefined;
    return new Connection((sink) => createTransport(type, env, sink), { maxNetworkDelayMs, handshakeExt, token, offeredTypes: this.options.transports, poll });
  }

  /** What interval polling runs on: the current candidate or the next one whose requests end, else the first such. */
  #pollingType(): ConnectionType {
    const { transports } = this.options;
    const from = transports.findIndex((type, index) => index >= this.#index && POLLING_TYPES.includes(type));
    const any = transports.findIndex((type) => POLLING_TYPES.includes(type));
    return transports[from >= 0 ? from : any >= 0 ? any : this.#index]!;
  }

  /**
   * Held requests keep being cut at the same age (a proxy's timeout): the session about to be
   * opened polls instead. The better transports are tried again later, as from any fallback.
   */
  #enterPolling(): void {
    this.#polling = true;
    this.#shortLived = 0;
    // The transport is not down, the network cuts it: no quick retry; and a climb that ended here
    // again waits twice as long before the next.
    this.#quickUpgradeTried = true;
    if (this.#climbedFromPolling) this.#upgradeDelayMs = Math.min(this.#upgradeDelayMs * 2, this.options.upgradeAfterMs * MAX_UPGRADE_DELAY_FACTOR);
    this.#climbedFromPolling = false;
  }

  #handlersFor(connection: Connection) {
    return {
      onDelivery: (message: Message) => {
        const waiting = this.#waiting.get(connection);
        if (waiting !== undefined) waiting.push(message);
        else this.#deliver(message);
      },
      onGaps: (channels: string[]) => {
        for (const channel of channels) this.downstream.gap(channel);
      },
      onHoldEnded: (heldMs: number, cut: boolean) => {
        this.#cuts.record(heldMs, cut);
        if (!cut && this.#climbedFromPolling && this.#cuts.cutAfterMs === undefined) {
          // A hold outlived the cuts: the climb back held, and the next fallback starts afresh.
          this.#climbedFromPolling = false;
          this.#upgradeDelayMs = this.options.upgradeAfterMs;
        }
      },
      onServerSubscription: (notice: ServerSubscriptionNotice) => {
        // Told by a session not (or no longer) in use: the one in use subscribes with the grant.
        if (!this.#closed) this.#serverSubscription(notice, connection === this.#connection);
      },
      onLost: (reconnect: Reconnect, error: Error, advice: Advice) => {
        if (connection !== this.#connection) return;
        this.#connection = undefined;
        this.#lost(reconnect, error, advice);
      },
    };
  }

  /**
   * Hands a delivery on, recording its id so a later session resumes after it: only for channels
   * subscribed to by name, the only ones that resume (a pattern's channels are without number).
   */
  #deliver(message: Message): void {
    const event = presenceEventOf(message);
    if (event !== undefined) return this.downstream.deliver(message.channel, message.data, undefined, event);
    const id = messageIdOf(message);
    if (id !== undefined && this.#wanted.has(message.channel)) this.#lastIds.set(message.channel, maxId(this.#lastIds.get(message.channel), id)!);
    this.downstream.deliver(message.channel, message.data, id);
  }

  #adopt(connection: Connection): void {
    if (this.#closed) {
      connection.disconnect();
      return;
    }
    const previous = this.#connection;
    this.#connection = connection;
    this.#everConnected = true;
    this.#adoptedAt = Date.now();
    this.#proven.add(connection.type);
    for (const wanted of this.#wanted.values()) wanted.confirmed = false;
    // After a loss each channel resumes from its last id; when moving over, the old session covers
    // everything until the new one is subscribed, so there is nothing to resume.
    const fresh = previous === undefined ? undefined : { since: undefined };
    const subscribed = [...this.#wanted.keys()].map((channel) => this.#subscribe(connection, channel, fresh, previous === undefined));
    this.#sendPublishes(connection);
    // Moving to a better transport: the old session keeps delivering until the new one holds
    // every subscription, so nothing falls between them; what both deliver, the client drops once.
    if (previous !== undefined) {
      // Until then the new session's messages wait: handed over before the old session's last
      // ones, a newer id would make the client drop those older ones as already seen.
      const waiting: Message[] = [];
      this.#waiting.set(connection, waiting);
      void Promise.allSettled(subscribed)
        .then(() => previous.retire())
        .then(() => {
          this.#waiting.delete(connection);
          for (const message of waiting) this.#deliver(message);
        });
    }
    this.downstream.state('connected', { transport: connection.type, polling: connection.polling });
    this.#scheduleUpgrade();
  }

  /** A session could not be opened. */
  #failed(error: Error, reconnect: Reconnect): void {
    if (this.#closed) return;
    if (reconnect === 'none') {
      this.#stop(error);
      return;
    }
    // A transport that cannot even open gives way at once to the next; the server being down or
    // refusing us costs a back-off before the whole list is tried again.
    if (!(error instanceof HandshakeError) && this.#index + 1 < this.options.transports.length) {
      this.#index++;
      this.#open();
      return;
    }
    this.#index = 0;
    this.#retry(this.#backoff.next(), error);
  }

  /** A working session ended. */
  #lost(advised: Reconnect, error: Error, advice: Advice): void {
    if (this.#closed) return;
    clearTimeout(this.#upgradeTimer);
    for (const wanted of this.#wanted.values()) wanted.confirmed = false;
    // Its token was revoked: a client that can fetch a fresh one tries once with it (a handshake
    // refusing that one too stops it); a client holding a fixed token stops now.
    const reconnect = advised === 'none' && typeof this.options.token === 'function' && /^403:token_revoked\b/.test(error.message) ? 'handshake' : advised;
    if (reconnect === 'none') {
      this.#stop(error);
      return;
    }
    const stable = Date.now() - this.#adoptedAt >= STABLE_MS;
    if (stable) {
      this.#backoff.reset();
      this.#shortLived = 0;
    }
    if (!this.#polling && this.options.intervalPolling === 'fallback' && this.#cuts.cutAfterMs !== undefined) {
      this.#enterPolling();
    } else if (!stable && reconnect === 'retry' && ++this.#shortLived >= SHORT_LIVED_LIMIT && this.#index + 1 < this.options.transports.length) {
      // Opens, then is cut, again and again (a proxy that kills WebSockets after a while): the
      // next transport may hold.
      this.#shortLived = 0;
      this.#index++;
    }
    // The server asked for a new handshake: it is up and answering, so go after the interval it
    // advised. A broken transport means trouble on the way: back off. Either way the loss counts,
    // so a server that keeps sending us back is not hammered.
    const first = this.#backoff.attempt === 0;
    const backoffMs = this.#backoff.next();
    this.#retry(reconnect === 'handshake' && first ? Math.max(0, advice.interval ?? 0) : backoffMs, error);
  }

  #retry(delayMs: number, error: Error): void {
    this.downstream.state('reconnecting', { delayMs, error });
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#open(), delayMs);
  }

  #stop(error: Error): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#upgradeTimer);
    for (const publish of this.#publishes.splice(0)) publish.reject(new PublishError(`the server refused the connection: ${error.message}`));
    this.downstream.state('disconnected', { error });
  }

  /**
   * Subscribes on `connection`. A new subscription starts from `start.since` (or now); a renewed
   * one resumes after the newest id known for the channel. `afterLoss`: the previous session
   * ended, so what it missed must be resumed or reported. Settles once the server has answered.
   */
  #subscribe(connection: Connection, channel: string, start?: { since: string | undefined }, afterLoss = false): Promise<void> {
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
        if (connection !== this.#connection || this.#wanted.get(channel) !== wanted) return;
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
  #subscribeLater(connection: Connection, channel: string, start: { since: string | undefined } | undefined, afterLoss: boolean, intervalMs = 0): Promise<void> {
    const wanted = this.#wanted.get(channel);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#retries.delete(timer);
        if (connection !== this.#connection || this.#wanted.get(channel) !== wanted) return resolve();
        resolve(this.#subscribe(connection, channel, start, afterLoss));
      }, Math.max(0, intervalMs));
      this.#retries.add(timer);
    });
  }

  #sendPublishes(connection: Connection): void {
    sendPublishes(connection, this.#publishes.splice(0));
  }

  /** On a fallback transport: later, open a session on the best one and move over if it works. */
  #scheduleUpgrade(): void {
    clearTimeout(this.#upgradeTimer);
    if (this.#closed || this.options.upgradeAfterMs <= 0 || this.options.intervalPolling === 'always') return;
    if (this.#index === 0 && !this.#polling) return;
    let delayMs = this.#upgradeDelayMs;
    if (!this.#quickUpgradeTried && this.#proven.has(this.options.transports[0]!)) {
      this.#quickUpgradeTried = true;
      delayMs = Math.min(delayMs, PROVEN_RETRY_MS);
    }
    this.#upgradeTimer = setTimeout(() => {
      const current = this.#connection;
      if (current === undefined || this.#closed) return;
      let candidate: Connection;
      try {
        candidate = this.#connect(this.options.transports[0]!);
      } catch {
        return;
      }
      this.#opening.add(candidate);
      candidate.open(this.#handlersFor(candidate)).then(
        () => {
          this.#opening.delete(candidate);
          if (this.#connection !== current || this.#closed) {
            candidate.disconnect();
            return;
          }
          this.#index = 0;
          if (this.#polling) {
            // Held requests may be cut still: the delay is reset only once one outlives the cuts.
            this.#polling = false;
            this.#climbedFromPolling = true;
          } else {
            this.#upgradeDelayMs = this.options.upgradeAfterMs;
            this.#quickUpgradeTried = false;
          }
          this.#adopt(candidate);
        },
        () => {
          this.#opening.delete(candidate);
          this.#upgradeDelayMs = Math.min(this.#upgradeDelayMs * 2, this.options.upgradeAfterMs * MAX_UPGRADE_DELAY_FACTOR);
          this.#scheduleUpgrade();
        },
      );
    }, delayMs);
  }
}

/** The later of two message ids (ids compare as strings). */
function maxId(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}
