/**
 * The real peers, wrapped in promises: the official CometD JavaScript client (through
 * cometd-nodejs-client's XMLHttpRequest) and the Faye Node client. None of their code is copied.
 */
import { adapt } from 'cometd-nodejs-client';
import type { SubscriptionHandle } from 'cometd';
import faye from 'faye';

adapt();
const { CometD } = await import('cometd');

export interface Received {
  channel: string;
  data?: any;
}

export const COMETD_TRANSPORTS = ['websocket', 'long-polling', 'callback-polling'] as const;
export type CometdTransport = (typeof COMETD_TRANSPORTS)[number];

/** The connection type a client is using now. */
export function cometdTransportOf(peer: CometdPeer): string | undefined {
  return peer.client.getTransport()?.type;
}

/** One CometD client. Handshake these one at a time: they share one cookie jar. */
export class CometdPeer {
  readonly client = new CometD();
  readonly handshakes: any[] = [];

  /** `transport`: the only connection type this client may use. */
  constructor(url: string, readonly transport: CometdTransport = 'long-polling', options: Record<string, unknown> = {}) {
    for (const type of COMETD_TRANSPORTS) if (type !== transport) this.client.unregisterTransport(type);
    this.client.configure({ url, logLevel: 'warn', backoffIncrement: 100, maxBackoff: 500, ...options });
    this.client.addListener('/meta/handshake', (reply: any) => this.handshakes.push(reply));
  }

  handshake(): Promise<any> {
    return new Promise((resolve, reject) =>
      this.client.handshake((reply: any) => (reply.successful ? resolve(reply) : reject(new Error(`handshake failed: ${JSON.stringify(reply)}`)))),
    );
  }

  /** Resolves with the subscription handle once the server acknowledged it. */
  subscribe(channel: string, onMessage: (message: Received) => void): Promise<SubscriptionHandle> {
    return new Promise((resolve, reject) => {
      const handle = this.client.subscribe(channel, onMessage, (reply: any) =>
        reply.successful ? resolve(handle) : reject(new Error(JSON.stringify(reply))),
      );
    });
  }

  unsubscribe(subscription: SubscriptionHandle): Promise<any> {
    return new Promise((resolve) => this.client.unsubscribe(subscription, resolve));
  }

  publish(channel: string, data: unknown): Promise<any> {
    return new Promise((resolve) => this.client.publish(channel, data, resolve));
  }

  remoteCall(target: string, data: unknown, timeoutMs = 5000): Promise<any> {
    return new Promise((resolve) => this.client.remoteCall(target, data, timeoutMs, resolve));
  }

  disconnect(): Promise<any> {
    if (this.client.isDisconnected()) return Promise.resolve(undefined);
    return new Promise((resolve) => this.client.disconnect(resolve));
  }
}

/** One Faye client. */
export class FayePeer {
  readonly client: any;

  /** `transport`: the connection type to use after the handshake (which Faye always sends over HTTP). */
  constructor(url: string, readonly transport: 'long-polling' | 'websocket' = 'long-polling') {
    this.client = new faye.Client(url, { timeout: 10, retry: 0.2 });
    this.client.disable('in-process');
    // Faye handshakes over HTTP whatever it then uses, so long-polling cannot be disabled; with
    // websocket enabled it upgrades to it as soon as the handshake is done.
    if (transport === 'long-polling') this.client.disable('websocket');
    this.client.disable('autodisconnect');
  }

  /** The connection type in use now. */
  get connectionType(): string | undefined {
    return this.client._dispatcher._transport?.connectionType;
  }

  /** Resolves once the server acknowledged the subscription. */
  async subscribe(channel: string, onMessage: (data: any) => void): Promise<{ cancel(): Promise<unknown> }> {
    const subscription = this.client.subscribe(channel, onMessage);
    await subscription;
    // Not the Subscription itself: it is a thenable, and a promise resolved with it never settles.
    return { cancel: () => Promise.resolve(subscription.cancel()) };
  }

  publish(channel: string, data: unknown): Promise<unknown> {
    const publication = this.client.publish(channel, data);
    return new Promise((resolve, reject) => publication.then(() => resolve(undefined), reject));
  }

  get clientId(): string | undefined {
    return this.client._dispatcher.clientId;
  }

  /** Says goodbye and waits for the reply; then nothing of this client keeps the process alive. */
  async disconnect(): Promise<void> {
    const publication = this.client.disconnect();
    if (publication !== undefined) await new Promise((resolve) => publication.then(resolve, resolve));
    this.client._dispatcher.close();
  }
}
