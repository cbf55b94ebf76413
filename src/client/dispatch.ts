/**
 * @module
 * The client's end of the seam in `upstream.ts`: what the holder of the connection tells (messages,
 * presence events, confirmed or refused subscriptions, state changes, gaps, server subscriptions)
 * reaches the application's handlers and listeners — each message once, however many resumes and
 * transport switches bring it again.
 */
import { expandChannel } from '../core/channel.js';
import type { ConnectionType, PresenceEvent } from './protocol.js';
import type { SubscriptionEvents } from './presence.js';
import type { Downstream, State, StateDetail } from './upstream.js';

/** What a handler is told besides the data. */
export interface MessageInfo {
  /** The concrete channel the message was published on. */
  readonly channel: string;
  /** Herald's id for the message. */
  readonly id: string | undefined;
}

export type MessageHandler = (data: any, info: MessageInfo) => void;

export interface ClientEvents {
  state: (state: State, detail: StateDetail) => void;
  /** Messages on a channel may have been lost while disconnected: history could not vouch for the time away. */
  gap: (channel: string) => void;
  /** A handler threw, or a subscription was refused. */
  error: (error: Error) => void;
  /**
   * The server's backend subscribed this client to `channel` (a channel or pattern), or no longer
   * does. Its messages go to `serverMessage` handlers (and to this client's own handlers of the
   * channel, if any); the client keeps it across reconnects, resuming from the last id seen.
   */
  serverSubscription: (channel: string, subscribed: boolean) => void;
  /** A message on a channel the server subscribed this client to; `info.subscription` names which. */
  serverMessage: (data: any, info: MessageInfo & { readonly subscription: string }) => void;
}

/** One `subscribe` call's handler, and how its `ready` promise settles. */
export interface Listener {
  readonly handler: MessageHandler;
  readonly settle: (error?: Error) => void;
  /** Its presence event listeners (`subscription.on`), by event. */
  events?: Map<string, Set<(value: any) => void>>;
}

/** Channels whose newest message id the client keeps to drop duplicates (see markSeen). */
export const MAX_SEEN_CHANNELS = 10_000;

export class Dispatch implements Downstream {
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #confirmed = new Set<string>();
  /** Newest id delivered per concrete channel: older or equal ids are duplicates. */
  readonly #seen = new Map<string, string>();
  readonly #events: { [K in keyof ClientEvents]: Set<ClientEvents[K]> } = { state: new Set(), gap: new Set(), error: new Set(), serverSubscription: new Set(), serverMessage: new Set() };
  /** The channels the server subscribed this client to. */
  readonly #server = new Set<string>();
  #state: State = 'connecting';
  #transport: ConnectionType | undefined;
  #polling = false;

  get connectionState(): State {
    return this.#state;
  }

  get transport(): ConnectionType | undefined {
    return this.#transport;
  }

  get polling(): boolean {
    return this.#polling;
  }

  /** Newest id seen per channel: where a tab taking over the connection resumes from. */
  get seen(): ReadonlyMap<string, string> {
    return this.#seen;
  }

  get serverSubscriptions(): string[] {
    return [...this.#server];
  }

  /** Adds a handler of `channel`; true when it is the channel's first (the connection must be asked for it). */
  add(channel: string, listener: Listener): boolean {
    let listeners = this.#listeners.get(channel);
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(channel, listeners);
    }
    return listeners.add(listener).size === 1;
  }

  /** Removes a handler; true when it was the channel's last (the connection may let the channel go). */
  remove(channel: string, listener: Listener): boolean {
    // A set the client already dropped (a refused subscription) is no longer this channel's.
    const listeners = this.#listeners.get(channel);
    if (listeners === undefined || !listeners.delete(listener) || listeners.size > 0) return false;
    this.#listeners.delete(channel);
    this.#confirmed.delete(channel);
    return true;
  }

  /** The server has confirmed the subscription to `channel`. */
  confirmed(channel: string): boolean {
    return this.#confirmed.has(channel);
  }

  /** Listens for an event; returns a function that stops listening. */
  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void {
    const listeners = this.#events[event] as Set<ClientEvents[K]> | undefined;
    if (listeners === undefined) throw new TypeError(`no such event: ${String(event)}`);
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /** The client is closed: every subscription not yet confirmed is refused, and the handlers are forgotten. */
  close(): void {
    for (const listeners of this.#listeners.values()) for (const listener of listeners) listener.settle(new Error('the client is closed'));
    this.#listeners.clear();
  }

  deliver(channel: string, data: unknown, id: string | undefined, event?: PresenceEvent): void {
    if (event !== undefined) return this.#presenceEvent(channel, event, data);
    const matched: MessageHandler[] = [];
    let subscription: string | undefined;
    for (const pattern of expandChannel(channel)) {
      const listeners = this.#listeners.get(pattern);
      if (listeners !== undefined) for (const listener of listeners) matched.push(listener.handler);
      if (subscription === undefined && this.#server.has(pattern)) subscription = pattern;
    }
    if (subscription !== undefined) {
      const named = subscription;
      for (const listener of this.#events.serverMessage) matched.push((data, info) => listener(data, { ...info, subscription: named }));
    }
    // Only what this tab listens to counts as seen: a tab that subscribes later from an older
    // id (other tabs' traffic is relayed to all) must still get the messages after it.
    if (matched.length === 0 || (id !== undefined && !this.markSeen(channel, id))) return;
    for (const handler of matched) {
      try {
        handler(data, { channel, id });
      } catch (error) {
        this.#emitError(error);
      }
    }
  }

  serverSubscription(channel: string, subscribed: boolean): void {
    // Told again when a grant is renewed: only a change is news.
    if (subscribed === this.#server.has(channel)) return;
    if (subscribed) this.#server.add(channel);
    else this.#server.delete(channel);
    for (const listener of [...this.#events.serverSubscription]) listener(channel, subscribed);
  }

  state(state: State, detail: StateDetail): void {
    this.#state = state;
    this.#transport = state === 'connected' ? detail.transport : undefined;
    this.#polling = state === 'connected' && detail.polling === true;
    for (const listener of [...this.#events.state]) listener(state, detail);
  }

  subscribed(channel: string, error?: Error): void {
    const listeners = this.#listeners.get(channel);
    if (listeners === undefined) return;
    if (error === undefined) {
      this.#confirmed.add(channel);
      for (const listener of listeners) listener.settle();
      return;
    }
    this.#listeners.delete(channel);
    for (const listener of listeners) listener.settle(error);
    listeners.clear();
    this.#emitError(error);
  }

  gap(channel: string): void {
    for (const listener of [...this.#events.gap]) listener(channel);
  }

  /**
   * Records `id` as seen on `channel`; false when it was seen already. Kept for the channels heard
   * from most recently, at most MAX_SEEN_CHANNELS: a pattern may bring messages from channels
   * without number, and a duplicate (a resume or transport switch replaying what came just before)
   * only ever follows close behind the original.
   */
  markSeen(channel: string, id: string): boolean {
    const last = this.#seen.get(channel);
    if (last !== undefined && id <= last) return false;
    this.#seen.delete(channel);
    this.#seen.set(channel, id);
    if (this.#seen.size > MAX_SEEN_CHANNELS) this.#seen.delete(this.#seen.keys().next().value!);
    return true;
  }

  /** A presence event goes to the `on(…)` listeners of the subscriptions to exactly its channel. */
  #presenceEvent(channel: string, event: keyof SubscriptionEvents, data: unknown): void {
    if (typeof data !== 'object' || data === null) return;
    for (const listener of this.#listeners.get(channel) ?? []) {
      for (const handler of listener.events?.get(event) ?? []) {
        try {
          handler(data);
        } catch (error) {
          this.#emitError(error);
        }
      }
    }
  }

  /** `thrown`: a refusal, or whatever a handler threw (not always an Error). */
  #emitError(thrown: unknown): void {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    if (this.#events.error.size === 0) {
      // Nobody listens: surface it the way an uncaught error in an event handler would be.
      queueMicrotask(() => {
        throw error;
      });
      return;
    }
    for (const listener of [...this.#events.error]) listener(error);
  }
}
