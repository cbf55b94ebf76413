/**
 * @module
 * The seam between the public client (handlers, de-duplication, events: `dispatch.ts`) and whatever
 * holds the server connection: this tab itself (`link.ts`), or another tab of the same origin (`tabs.ts`).
 */
import type { ConnectionType, PresenceEvent } from './protocol.js';

export type State = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

export interface StateDetail {
  /** The connection type in use, once connected. */
  readonly transport?: ConnectionType;
  /** Once connected: interval polling (no request held; the last resort where held ones are cut). */
  readonly polling?: boolean;
  /** Before a retry: how long the client waits. */
  readonly delayMs?: number;
  /** What went wrong, when something did. */
  readonly error?: Error;
}

/** The server's answer to a publish. */
export interface PublishReply {
  readonly channel: string;
  readonly successful: boolean;
  /** Herald's id for the published message. */
  readonly messageId?: string;
  /** What a `/service/**` handler answered. */
  readonly data?: unknown;
}

/** What the holder of the connection tells the client. */
export interface Downstream {
  /** `event`: a presence event (join, leave, count) rather than a published message. */
  deliver(channel: string, data: unknown, id: string | undefined, event?: PresenceEvent): void;
  state(state: State, detail: StateDetail): void;
  /** The server confirmed (or refused, with `error`) a subscription. */
  subscribed(channel: string, error?: Error): void;
  /** Messages on `channel` were lost for good: history no longer reached back far enough. */
  gap(channel: string): void;
  /**
   * The server subscribed this client to `channel` (`grant`: its leave to subscribe again later,
   * renewed now and then), or no longer does (`subscribed` false).
   */
  serverSubscription(channel: string, subscribed: boolean, grant?: string): void;
}

/** What the client asks of the holder of the connection. */
export interface Upstream {
  /** Keeps the server subscribed to `channel`; `since`: resume after this message id. */
  want(channel: string, since: string | undefined): void;
  unwant(channel: string): void;
  /** Keeps a server subscription (known from another tab) on the connection: subscribes again with `grant` when needed. */
  serverWant?(channel: string, grant: string): void;
  publish(channel: string, data: unknown): Promise<PublishReply>;
  /** A request to the Herald server's origin whose reply may bring this client's messages (herald.fetch). */
  fetch(fetchImpl: typeof fetch, input: RequestInfo | URL, init: RequestInit | undefined): Promise<Response>;
  close(): void;
}
