/**
 * @module
 * `eventsource`: deliveries come down an EventSource on `<endpoint>/<clientId>`; everything the
 * client sends (connects included, which the server answers at once) goes over long-polling.
 * Where WebSocket is blocked, this still pushes without a request per message.
 */
import type { Message } from '../protocol.js';
import { LongPollingTransport } from './long-polling.js';
import type { EventSourceLike, Transport, TransportEnvironment, TransportSink } from './transport.js';
import { parseBatch, TransportError } from './transport.js';

export class EventSourceTransport implements Transport {
  readonly type: 'eventsource' = 'eventsource';
  readonly #requests: LongPollingTransport;
  #source: EventSourceLike | undefined;
  #closed = false;

  constructor(
    private readonly env: TransportEnvironment,
    private readonly sink: TransportSink,
  ) {
    if (env.EventSource === undefined) throw new TransportError('eventsource needs EventSource');
    this.#requests = new LongPollingTransport(env, sink);
  }

  send(messages: Message[], replyWithinMs: number): void {
    this.#requests.send(messages, replyWithinMs);
  }

  /** Opens the stream; resolves once it is open, rejects if it cannot be. */
  started(clientId: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const url = `${this.env.url.replace(/\/+$/, '')}/${encodeURIComponent(clientId)}`;
      const source = new this.env.EventSource!(url, { withCredentials: true });
      this.#source = source;
      let open = false;
      // Open is not enough: a proxy that buffers streamed bodies passes the headers and holds
      // every event. The server's first event (an empty batch) proves the stream delivers.
      source.onopen = () => {
        open = true;
      };
      source.onmessage = (event) => {
        if (this.#closed) return;
        resolve();
        try {
          this.sink.receive(parseBatch(event.data));
        } catch (error) {
          this.#fail(new TransportError('the server sent a malformed event', { cause: error }));
        }
      };
      source.onerror = () => {
        // EventSource would reconnect by itself, but messages written to the dead stream are
        // gone: the client resumes from its last ids instead, on a fresh session.
        const error = new TransportError(`the event stream at ${url} ${open ? 'broke' : 'could not be opened'}`);
        if (!open) {
          this.close();
          reject(error);
        } else {
          this.#fail(error);
        }
      };
    });
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.close();
    this.sink.fail(error);
  }

  close(): void {
    this.#closed = true;
    this.#source?.close();
    this.#requests.close();
  }
}
