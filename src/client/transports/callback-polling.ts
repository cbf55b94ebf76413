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
/** As long as any callback name this transport makes, for measuring URLs. */
const CALLBACK_SAMPLE = '__herald00000000_000000';

type CallbackHost = Record<string, ((replies: unknown) => void) | undefined>;

export class CallbackPollingTransport implements Transport {
  readonly type: 'callback-polling' = 'callback-polling';
  /** Callback names are unique per transport, and unlike any other script's on the page. */
  readonly #prefix = `__herald${Math.random().toString(36).slice(2, 10)}_`;
  /** Requests not answered yet: closing gives up on them (their scripts still clean up after themselves). */
  readonly #pending = new Set<(why: string) => void>();
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
      if (this.#url([message], CALLBACK_SAMPLE).length > MAX_URL_LENGTH) {
        // Too big for any URL: answered here, as the server would a message it cannot take.
        this.sink.receive([{ channel: message.channel, id: message.id, successful: false, error: '413::message too large for callback-polling' }]);
        continue;
      }
      if (group.length > 0 && this.#url(group.concat(message), CALLBACK_SAMPLE).length > MAX_URL_LENGTH) {
        this.#request(group, replyWithinMs);
        group = [];
      }
      group.push(message);
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
    let answered = false;
    // The script stays until it has loaded or failed, even after we gave up on it, so that its
    // callback is always there to call and is always removed afterwards: no global is left behind.
    const cleanUp = () => {
      delete host[name];
      script.remove();
    };
    const giveUp = (why: string) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      this.#pending.delete(giveUp);
      if (!this.#closed) this.sink.fail(new TransportError(why));
    };
    const timer = setTimeout(() => giveUp(`no reply within ${replyWithinMs} ms`), replyWithinMs);
    host[name] = (replies: unknown) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      this.#pending.delete(giveUp);
      if (this.#closed) return;
      if (!Array.isArray(replies)) this.sink.fail(new TransportError('the server sent something that is not a Bayeux message'));
      else this.sink.receive(replies as Message[]);
    };
    script.onload = () => {
      cleanUp();
      // Loaded without calling back: not a reply from a Bayeux server.
      giveUp(`the script from ${this.env.url} did not answer`);
    };
    script.onerror = () => {
      cleanUp();
      giveUp(`the script request to ${this.env.url} failed`);
    };
    script.async = true;
    script.src = this.#url(messages, name);
    this.#pending.add(giveUp);
    document.head.appendChild(script);
  }

  close(): void {
    this.#closed = true;
    for (const giveUp of [...this.#pending]) giveUp('closed');
  }
}
