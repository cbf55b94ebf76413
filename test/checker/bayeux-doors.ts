/**
 * @module
 * Bayeux subscribers with the real clients: the Herald client (WebSocket, long-polling), the
 * official CometD client with its AckExtension, and the Faye client. CometD and Faye carry a small
 * extension a careful user would add to get Herald's resume (STYLE: no client code copied): it asks
 * for ids in the handshake, resubscribes `since` the last id seen, and reports Herald's gap signals.
 */
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import type { HeraldClientOptions } from '../../src/client/herald.js';
import type { ConnectionType } from '../../src/client/protocol.js';
import { CometdPeer, FayePeer } from '../helpers/interop.js';
import type { Door, DoorContext } from './rest-doors.js';
import type { Recorder } from './recorder.js';

const { AckExtension } = await import('cometd');

export class HeraldClientDoor implements Door {
  #client: Herald | undefined;

  constructor(
    readonly recorder: Recorder,
    protected readonly context: DoorContext,
    private readonly transport: ConnectionType,
    /** More client options (interval polling, a fetch that watches the wire). */
    private readonly tuning: HeraldClientOptions = {},
  ) {}

  /** The client, once started. */
  protected get client(): Herald | undefined {
    return this.#client;
  }

  start(): void {
    const tokens = this.context.tokens;
    const client = new Herald(`http://127.0.0.1:${this.context.port}/bayeux`, {
      shareConnection: false,
      WebSocket,
      transports: [this.transport],
      backoff: { initialMs: 50, maxMs: 500 },
      maxNetworkDelayMs: 3000,
      upgradeAfterMs: 0,
      ...(tokens === undefined ? {} : { token: () => tokens.fresh() }),
      ...this.tuning,
    });
    this.#client = client;
    client.on('gap', (channel) => this.recorder.gap(channel, 'client gap event'));
    client.on('error', (error) => this.recorder.note(`error: ${error.message}`));
    client.on('state', (state, detail) => {
      this.recorder.note(`${state}${detail.transport === undefined ? '' : ` over ${detail.transport}`}${detail.error === undefined ? '' : `: ${detail.error.message}`}`);
      if (state === 'disconnected') this.recorder.stop(`client disconnected: ${detail.error?.message ?? 'no reason'}`);
    });
    const subscription = client.subscribe(this.recorder.target, (data, info) => this.recorder.deliver(info.channel, data, info.id));
    subscription.ready.then(
      () => this.recorder.ready(),
      (error: Error) => this.recorder.stop(`subscription refused: ${error.message}`),
    );
  }

  async close(): Promise<void> {
    this.#client?.close();
  }
}

/** Keeps the newest id per channel, and reports Herald's gap signals: the resume a CometD or Faye user adds. */
class ResumeState {
  readonly last = new Map<string, string>();
  /** The session the client has now (for faults that end it from elsewhere). */
  clientId: string | undefined;

  constructor(
    private readonly recorder: Recorder,
    private readonly context: DoorContext,
  ) {}

  outgoing(message: any): void {
    if (message.channel === '/meta/handshake') {
      message.ext = { ...message.ext, herald: { ids: true } };
      if (this.context.tokens !== undefined) message.ext.auth = { token: this.context.tokens.current };
    }
    const since = message.channel === '/meta/subscribe' ? this.last.get(message.subscription) : undefined;
    if (since !== undefined) message.ext = { ...message.ext, herald: { since } };
    if (message.channel === '/meta/subscribe') this.recorder.note(`subscribe since ${since ?? 'now'}`);
  }

  incoming(message: any): void {
    const herald = message.ext?.herald;
    if (message.channel === '/meta/handshake') {
      this.recorder.note(`handshake ${message.successful === true ? `ok ${String(message.clientId).slice(0, 6)}` : `failed ${message.error}`}`);
      if (message.successful === true) this.clientId = message.clientId;
    }
    if (message.channel === '/meta/connect' && message.successful !== true) this.recorder.note(`connect failed ${message.error ?? ''} ${JSON.stringify(message.advice ?? {})}`);
    if (message.channel === '/meta/subscribe' && message.successful !== true) this.recorder.note(`subscribe failed ${message.error ?? ''} ${JSON.stringify(message.advice ?? {})}`);
    if (message.channel === '/meta/subscribe' && message.successful === true) {
      if (herald?.gap === true) this.recorder.gap(this.recorder.target, 'subscribe reply ext.herald.gap');
      if (typeof herald?.last === 'string' && !this.last.has(this.recorder.target)) this.last.set(this.recorder.target, herald.last);
    }
    if (Array.isArray(herald?.gaps)) for (const channel of herald.gaps) this.recorder.gap(String(channel), 'connect reply ext.herald.gaps');
    if (typeof message.channel === 'string' && message.advice?.reconnect === 'none') {
      this.recorder.stop(`${message.channel} advised reconnect none: ${message.error ?? 'no error'}`);
    }
    if (message.data !== undefined && !String(message.channel).startsWith('/meta/') && typeof herald?.id === 'string') {
      const previous = this.last.get(message.channel);
      if (previous === undefined || herald.id > previous) this.last.set(message.channel, herald.id);
    }
  }
}

/** How long a CometD door waits before asking again for a subscription that failed. */
const SUBSCRIBE_RETRY_MS = 250;

/** One at a time: CometD clients in one process share one cookie jar. */
let handshakes: Promise<unknown> = Promise.resolve();

export class CometdDoor implements Door {
  #resume: ResumeState | undefined;
  #peer: CometdPeer | undefined;

  constructor(
    readonly recorder: Recorder,
    private readonly context: DoorContext,
    private readonly transport: 'websocket' | 'long-polling',
  ) {}

  start(): void {
    const peer = new CometdPeer(`http://127.0.0.1:${this.context.port}/cometd`, this.transport, { maxNetworkDelay: 3000 });
    this.#peer = peer;
    const resume = (this.#resume = new ResumeState(this.recorder, this.context));
    peer.client.registerExtension('ack', new AckExtension());
    peer.client.registerExtension('herald-resume', {
      outgoing: (message: any) => (resume.outgoing(message), message),
      incoming: (message: any) => (resume.incoming(message), message),
    });
    // CometD drops its subscriptions on every handshake: subscribe in the handshake listener.
    // It also drops a subscription whose /meta/subscribe failed (refused, or lost in transit) and
    // never asks again (Client.js #failSubscribe): the application must, as a careful one does —
    // after a pause, while the session it subscribed in is still the one in use (a new session
    // subscribes from the handshake listener), and not when told not to come back.
    const subscribe = (clientId: string) => {
      peer.client.subscribe(
        this.recorder.target,
        (message: any) => this.recorder.deliver(message.channel, message.data, message.ext?.herald?.id),
        (answer: any) => {
          if (answer.successful === true) return this.recorder.ready();
          this.recorder.note(`subscribe failed ${answer.error ?? answer.failure?.reason ?? 'in transit'}: subscribing again`);
          if (answer.advice?.reconnect === 'none') return;
          setTimeout(() => {
            if (peer.client.getClientId() === clientId && !peer.client.isDisconnected()) subscribe(clientId);
          }, SUBSCRIBE_RETRY_MS);
        },
      );
    };
    peer.client.addListener('/meta/handshake', (reply: any) => {
      if (reply.successful === true) subscribe(reply.clientId);
    });
    handshakes = handshakes.then(() => this.context.tokens?.fresh()).then(() => peer.handshake().catch(() => undefined));
  }

  get clientId(): string | undefined {
    return this.#resume?.clientId;
  }

  async close(): Promise<void> {
    await this.#peer?.disconnect().catch(() => undefined);
  }
}

export class FayeDoor implements Door {
  #resume: ResumeState | undefined;
  #peer: FayePeer | undefined;

  constructor(
    readonly recorder: Recorder,
    private readonly context: DoorContext,
    private readonly transport: 'websocket' | 'long-polling',
  ) {}

  start(): void {
    const peer = new FayePeer(`http://127.0.0.1:${this.context.port}/bayeux`, this.transport);
    this.#peer = peer;
    const resume = (this.#resume = new ResumeState(this.recorder, this.context));
    peer.client.addExtension({
      outgoing: (message: any, callback: (m: any) => void) => (resume.outgoing(message), callback(message)),
      incoming: (message: any, callback: (m: any) => void) => (resume.incoming(message), callback(message)),
    });
    peer.client.on('transport:down', () => this.recorder.note('transport down'));
    peer.client.on('transport:up', () => this.recorder.note(`transport up (${peer.connectionType})`));
    void this.context.tokens?.fresh();
    // Faye resubscribes by itself after a re-handshake. Its handler sees only the data: the
    // target is one channel.
    peer.subscribe(this.recorder.target, (data) => this.recorder.deliver(this.recorder.target, data)).then(
      () => this.recorder.ready(),
      (error: Error) => this.recorder.stop(`subscription refused: ${error.message}`),
    );
  }

  get clientId(): string | undefined {
    return this.#resume?.clientId;
  }

  async close(): Promise<void> {
    await this.#peer?.disconnect().catch(() => undefined);
  }
}
