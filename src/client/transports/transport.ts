/**
 * @module
 * A connection type as the client sees it: a pipe that carries batches of Bayeux messages to the
 * server and hands whatever comes back (replies, deliveries) to a sink. It holds no protocol
 * logic; `connection.ts` matches replies to requests and drives the connect loop.
 */
import type { ConnectionType, Message } from '../protocol.js';

export interface TransportSink {
  /** Messages from the server, in the order they arrived. */
  receive(messages: Message[]): void;
  /** The pipe broke (network error, refused upgrade, bad status, closed socket): nothing more will come. */
  fail(error: Error): void;
}

export interface Transport {
  readonly type: ConnectionType;
  /**
   * Sends one batch. `replyWithinMs` bounds how long a request-based transport waits for its
   * response (a held connect waits longer than a subscribe).
   */
  send(messages: Message[], replyWithinMs: number): void;
  /** Called once the handshake gave the session its id (the EventSource stream needs it). */
  started?(clientId: string): Promise<void>;
  close(): void;
}

/** What a transport needs from its environment; injected so Node can supply what browsers have. */
export interface TransportEnvironment {
  /** Absolute http(s) URL of the Bayeux endpoint. */
  readonly url: string;
  readonly WebSocket: WebSocketConstructor | undefined;
  readonly EventSource: EventSourceConstructor | undefined;
  readonly fetch: typeof fetch | undefined;
  /** Present in browsers only: JSONP needs a document to add scripts to. */
  readonly document: Document | undefined;
}

export interface WebSocketConstructor {
  new (url: string): WebSocketLike;
}

/** The part of the WHATWG WebSocket the client uses (npm `ws` has it too). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface EventSourceConstructor {
  new (url: string, init?: { withCredentials?: boolean }): EventSourceLike;
}

export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: string }) => void) | null;
  onerror: ((event: any) => void) | null;
  close(): void;
}

export class TransportError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransportError';
  }
}

/** Replies are JSON arrays; a lone message is tolerated. */
export function parseBatch(text: string): Message[] {
  const value: unknown = JSON.parse(text);
  const list = Array.isArray(value) ? value : [value];
  if (!list.every((m) => typeof m === 'object' && m !== null && typeof (m as Message).channel === 'string')) {
    throw new TransportError('the server sent something that is not a Bayeux message');
  }
  return list as Message[];
}
