/**
 * @module
 * `websocket`: each batch is one text frame holding a JSON array; the server answers with frames
 * and pushes deliveries as they happen. Frames sent before the socket opens wait for it.
 */
import type { Message } from '../protocol.js';
import type { Transport, TransportEnvironment, TransportSink, WebSocketLike } from './transport.js';
import { parseBatch, TransportError } from './transport.js';

const OPEN = 1;

export class WebSocketTransport implements Transport {
  readonly type: 'websocket' = 'websocket';
  readonly #socket: WebSocketLike;
  readonly #waiting: string[] = [];
  #closed = false;

  constructor(env: TransportEnvironment, sink: TransportSink) {
    if (env.WebSocket === undefined) throw new TransportError('websocket needs a WebSocket implementation');
    const url = env.url.replace(/^http/, 'ws');
    const fail = (error: Error) => {
      if (this.#closed) return;
      this.close();
      sink.fail(error);
    };
    const socket = new env.WebSocket(url);
    this.#socket = socket;
    socket.onopen = () => {
      for (const frame of this.#waiting.splice(0)) socket.send(frame);
    };
    socket.onmessage = (event) => {
      if (this.#closed) return;
      if (typeof event.data !== 'string') return fail(new TransportError('the server sent a binary frame'));
      let messages: Message[];
      try {
        messages = parseBatch(event.data);
      } catch (error) {
        return fail(new TransportError('the server sent a malformed frame', { cause: error }));
      }
      sink.receive(messages);
    };
    // An error is always followed by a close, which says more.
    socket.onerror = () => undefined;
    socket.onclose = (event: { code?: number; reason?: string }) => {
      const detail = event.reason ? `${event.code}, ${event.reason}` : String(event.code);
      fail(new TransportError(`the WebSocket to ${url} closed (${detail})`));
    };
  }

  send(messages: Message[]): void {
    if (this.#closed) return;
    const frame = JSON.stringify(messages);
    if (this.#socket.readyState === OPEN) this.#socket.send(frame);
    else this.#waiting.push(frame);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiting.length = 0;
    try {
      this.#socket.close(1000);
    } catch {
      // Closing a socket that never opened may throw in some implementations; it is gone either way.
    }
  }
}
