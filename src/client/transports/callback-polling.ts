/**
 * @module
 * `callback-polling` (JSONP): each batch is a `<script>` whose URL carries the messages and the
 * name of a callback the reply calls. It is the way through to a cross-origin server that does
 * not allow this page's origin: classic scripts need no CORS.
 */
import type { Message } from '../protocol.js';
import type { Transport, TransportEnvironment, TransportSink } from './transport.js';
import { TransportError } from './transport.js';

/** Longer URLs are refused by some servers and proxies; bigger batches are split. */
const MAX_URL_LENGTH = 6000;

type CallbackHost = Record<string, ((replies: unknown) => void) | undefined>;

export class CallbackPollingTransport implements Transport {
  readonly type: 'callback-polling' = 'callback-polling';
  /** Callback names are unique per transport, and unlike any other script's on the page. */
  readonly #prefix = `__herald${Math.random().toString(36).slice(2, 10)}_`;
  readonly #scripts = new Set<() => void>();
  #count = 0;
  #closed = false;

  constructor(
    private readonly env: TransportEnvironment,
    private readonly sink: TransportSink,
  ) {
    if (env.document === undefined) throw new TransportError('callback-polling needs a document');
  }

  send(messages: Message[], replyWithinMs: number): void {
    let group: Message[] = [];
    for (const message of messages) {
      if (group.length > 0 && this.#url(group.concat(message), 'x').length > MAX_URL_LENGTH) {
        this.#request(group, replyWithinMs);
        group = [];
      }
      group.push(message);
    }
    if (group.length === 1 && this.#url(group, 'x').length > MAX_URL_LENGTH) {
      // Too big for any URL: answer it here, as the server would a message it cannot take.
      const [message] = group;
      this.sink.receive([{ channel: message!.channel, id: message!.id, successful: false, error: '413::message too large for callback-polling' }]);
      return;
    }
    if (group.length > 0) this.#request(group, replyWithinMs);
  }

  #url(messages: Message[], callback: string): string {
    const separator = this.env.url.includes('?') ? '&' : '?';
    return `${this.env.url}${separator}jsonp=${callback}&message=${encodeURIComponent(JSON.stringify(messages))}`;
  }

  #request(messages: Message[], replyWithinMs: number): void {
    const document = this.env.document!;
    const host = globalThis as unknown as CallbackHost;
    const name = this.#prefix + ++this.#count;
    const script = document.createElement('script');
    const finish = () => {
      clearTimeout(timer);
      // A reply arriving after we gave up must still find a function to call.
      host[name] = () => undefined;
      script.remove();
      this.#scripts.delete(finish);
    };
    const fail = (why: string) => {
      finish();
      if (!this.#closed) this.sink.fail(new TransportError(why));
    };
    const timer = setTimeout(() => fail(`no reply within ${replyWithinMs} ms`), replyWithinMs);
    host[name] = (replies: unknown) => {
      finish();
      if (this.#closed) return;
      if (!Array.isArray(replies)) this.sink.fail(new TransportError('the server sent something that is not a Bayeux message'));
      else this.sink.receive(replies as Message[]);
    };
    script.onerror = () => fail(`the script request to ${this.env.url} failed`);
    script.async = true;
    script.src = this.#url(messages, name);
    this.#scripts.add(finish);
    document.head.appendChild(script);
  }

  close(): void {
    this.#closed = true;
    for (const finish of [...this.#scripts]) finish();
  }
}
