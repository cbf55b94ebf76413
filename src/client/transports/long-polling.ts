/**
 * @module
 * `long-polling`: each batch is a POST of a JSON array, answered by a JSON array. A held connect
 * is one request; everything else travels in a second one (Bayeux never needs more than two).
 */
import type { Message } from '../protocol.js';
import type { Transport, TransportEnvironment, TransportSink } from './transport.js';
import { parseBatch, TransportError } from './transport.js';

export class LongPollingTransport implements Transport {
  readonly type: 'long-polling' = 'long-polling';
  readonly #requests = new Set<AbortController>();
  #closed = false;

  constructor(
    private readonly env: TransportEnvironment,
    private readonly sink: TransportSink,
  ) {
    if (env.fetch === undefined) throw new TransportError('long-polling needs fetch');
  }

  send(messages: Message[], replyWithinMs: number): void {
    const request = new AbortController();
    this.#requests.add(request);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      request.abort();
    }, replyWithinMs);
    this.env.fetch!(this.env.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json;charset=UTF-8' },
      body: JSON.stringify(messages),
      // The BAYEUX_BROWSER cookie ties the session to this browser, cross-origin too.
      credentials: 'include',
      cache: 'no-store',
      // A Bayeux endpoint does not move: a redirect is a proxy's or a portal's (a 301/302 would
      // turn the POST into a GET; a 307 would carry the handshake's token wherever it points,
      // twenty times over in a loop). It breaks the transport like any other wrong answer.
      redirect: 'error',
      // A goodbye sent as the page closes must outlive the page.
      keepalive: messages.some((message) => message.channel === '/meta/disconnect'),
      signal: request.signal,
    })
      .then(async (response) => {
        if (!response.ok) throw new TransportError(`HTTP ${response.status} from ${this.env.url}`);
        return parseBatch(await response.text());
      })
      .then(
        (replies) => {
          if (!this.#closed) this.sink.receive(replies);
        },
        (error: unknown) => {
          if (this.#closed) return;
          this.sink.fail(timedOut ? new TransportError(`no reply within ${replyWithinMs} ms`) : asTransportError(error));
        },
      )
      .finally(() => {
        clearTimeout(timer);
        this.#requests.delete(request);
      });
  }

  close(): void {
    this.#closed = true;
    for (const request of this.#requests) request.abort();
    this.#requests.clear();
  }
}

export function asTransportError(error: unknown): TransportError {
  if (error instanceof TransportError) return error;
  return new TransportError(error instanceof Error ? error.message : String(error), { cause: error });
}
