/**
 * @module
 * This tab's own connection to the server, kept alive whatever happens: it opens a session on the
 * transport `transport-choice.ts` picks (falling back when one cannot open), reconnects with capped
 * exponential back-off and jitter after errors, honours the server's advice, has every wanted
 * channel subscribed again on a new session (`wanted-channels.ts`), and moves over to the better
 * transport when a try at it opens.
 */
import { Backoff } from './backoff.js';
import type { BackoffOptions } from './backoff.js';
import { Connection, HandshakeError } from './connection.js';
import type { PollSchedule } from './poll-schedule.js';
import type { Reconnect, TokenSource } from './connection.js';
import type { Advice, ConnectionType, Message, ServerSubscriptionNotice } from './protocol.js';
import { createTransport } from './transports/create.js';
import type { TransportEnvironment } from './transports/transport.js';
import { TransportError } from './transports/transport.js';
import type { Downstream, PublishReply, Upstream } from './upstream.js';
import { fetchWithDeliveries } from './piggyback-fetch.js';
import { PublishError, sendPublishes } from './publishes.js';
import type { QueuedPublish } from './publishes.js';
import { TransportChoice } from './transport-choice.js';
import type { TransportChoiceOptions } from './transport-choice.js';
import { WantedChannels } from './wanted-channels.js';

export { PublishError } from './publishes.js';

export interface LinkOptions extends TransportChoiceOptions {
  readonly env: TransportEnvironment;
  readonly backoff: BackoffOptions;
  readonly random: () => number;
  readonly maxNetworkDelayMs: number;
  readonly handshakeExt: Record<string, unknown>;
  readonly token?: TokenSource | undefined;
  /** When each poll goes, in interval polling. */
  readonly poll: PollSchedule;
}

/** A session that lasted this long was a success: the next failure starts the back-off afresh. */
const STABLE_MS = 5000;

export class Link implements Upstream {
  readonly #channels: WantedChannels;
  readonly #publishes: QueuedPublish[] = [];
  readonly #backoff: Backoff;
  readonly #choice: TransportChoice;
  #connection: Connection | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #upgradeTimer: ReturnType<typeof setTimeout> | undefined;
  #everConnected = false;
  #adoptedAt = 0;
  /** Sessions being opened (a reconnect, an upgrade): close() ends them too. */
  readonly #opening = new Set<Connection>();
  /** A session taking over from another holds its messages until the other has handed over its last. */
  readonly #waiting = new Map<Connection, Message[]>();
  #closed = false;

  constructor(
    private readonly options: LinkOptions,
    private readonly downstream: Downstream,
    seedIds: ReadonlyMap<string, string> = new Map(),
  ) {
    if (options.transports.length === 0) throw new TransportError('no usable transport in this environment');
    this.#backoff = new Backoff(options.backoff, options.random);
    this.#choice = new TransportChoice(options);
    this.#channels = new WantedChannels(downstream, () => this.#connection, seedIds);
    this.#open();
  }

  want(channel: string, since: string | undefined): void {
    this.#channels.want(channel, since);
  }

  unwant(channel: string): void {
    this.#channels.unwant(channel);
  }

  serverWant(channel: string, grant: string): void {
    this.#channels.serverSubscription({ channel, subscribed: true, grant, last: undefined }, false);
  }

  /** In interval polling now. */
  get polling(): boolean {
    return this.#choice.polling;
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
    this.#channels.close();
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
      connection = this.#connect(this.#choice.candidate, this.#choice.polling);
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

  #handlersFor(connection: Connection) {
    return {
      onDelivery: (message: Message) => {
        const waiting = this.#waiting.get(connection);
        if (waiting !== undefined) waiting.push(message);
        else this.#channels.deliver(message);
      },
      onGaps: (channels: string[]) => {
        for (const channel of channels) this.downstream.gap(channel);
      },
      onHoldEnded: (heldMs: number, cut: boolean) => this.#choice.holdEnded(heldMs, cut),
      onServerSubscription: (notice: ServerSubscriptionNotice) => {
        // Told by a session not (or no longer) in use: the one in use subscribes with the grant.
        if (!this.#closed) this.#channels.serverSubscription(notice, connection === this.#connection);
      },
      onLost: (reconnect: Reconnect, error: Error, advice: Advice) => {
        if (connection !== this.#connection) return;
        this.#connection = undefined;
        this.#lost(reconnect, error, advice);
      },
    };
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
    this.#choice.adopted(connection.type);
    const subscribed = this.#channels.subscribeAll(connection, previous === undefined);
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
          for (const message of waiting) this.#channels.deliver(message);
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
    if (this.#choice.openFailed(error instanceof HandshakeError)) this.#open();
    else this.#retry(this.#backoff.next(), error);
  }

  /** A working session ended. */
  #lost(advised: Reconnect, error: Error, advice: Advice): void {
    if (this.#closed) return;
    clearTimeout(this.#upgradeTimer);
    this.#channels.unconfirm();
    // Its token was revoked: a client that can fetch a fresh one tries once with it (a handshake
    // refusing that one too stops it); a client holding a fixed token stops now.
    const reconnect = advised === 'none' && typeof this.options.token === 'function' && /^403:token_revoked\b/.test(error.message) ? 'handshake' : advised;
    if (reconnect === 'none') {
      this.#stop(error);
      return;
    }
    const stable = Date.now() - this.#adoptedAt >= STABLE_MS;
    if (stable) this.#backoff.reset();
    this.#choice.lost(stable, reconnect);
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

  #sendPublishes(connection: Connection): void {
    sendPublishes(connection, this.#publishes.splice(0));
  }

  /** On a fallback transport: later, open a session on the best one and move over if it works. */
  #scheduleUpgrade(): void {
    clearTimeout(this.#upgradeTimer);
    if (this.#closed) return;
    const delayMs = this.#choice.upgradeDelayMs();
    if (delayMs === undefined) return;
    this.#upgradeTimer = setTimeout(() => {
      const current = this.#connection;
      if (current === undefined || this.#closed) return;
      let candidate: Connection;
      try {
        candidate = this.#connect(this.#choice.best);
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
          this.#choice.climbed();
          this.#adopt(candidate);
        },
        () => {
          this.#opening.delete(candidate);
          this.#choice.climbFailed();
          this.#scheduleUpgrade();
        },
      );
    }, delayMs);
  }
}
