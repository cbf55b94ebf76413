/**
 * @module
 * One webhook POST over node:http / node:https, through a keep-alive agent of the receiver's own
 * (one socket: the sender has one request in flight per receiver). Not `fetch`: measured on this
 * kind of machine, a keep-alive POST through undici costs 360–580 µs of CPU against 90–185 µs
 * here (bench/RESULTS.md, issue 17). What it keeps of fetch's behaviour:
 * - TLS is verified (node:https's default: a self-signed or wrongly named certificate fails);
 * - redirects are not followed: a 3xx is an answer other than 2xx, so a failure;
 * - the answer's body is discarded (read and dropped, so that the connection is free again);
 * - no answer within the timeout, or the caller's signal aborted: the request is destroyed.
 * A request on a kept-alive connection that the receiver had closed meanwhile (it reset before
 * any answer) is sent again at once on a new one, once: that is the connection's fault, not the
 * receiver's (Node's own advice for `reusedSocket`). The receiver may then see it twice, as with
 * any retry: its events keep their ids.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Clock } from '../core/clock.js';

/** An idle kept-alive connection is closed after this long (or sooner, if the receiver's `Keep-Alive: timeout=` says so). */
const IDLE_SOCKET_MS = 30_000;

/** A receiver's URL and the connection kept to it. */
export class WebhookEndpoint {
  readonly #url: URL;
  readonly #agent: HttpAgent;
  readonly #request: typeof httpRequest;

  constructor(url: string) {
    this.#url = new URL(url);
    const https = this.#url.protocol === 'https:';
    const options = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1, timeout: IDLE_SOCKET_MS };
    this.#agent = https ? new HttpsAgent(options) : new HttpAgent(options);
    this.#request = https ? httpsRequest : httpRequest;
  }

  /**
   * POSTs `body` with `headers`: resolves with undefined when answered 2xx, else with what went
   * wrong (never rejects). `timeoutMs` bounds the whole exchange, the answer's body included.
   */
  async post(body: string, headers: Record<string, string>, signal: AbortSignal, timeoutMs: number, clock: Clock): Promise<string | undefined> {
    const first = await this.#attempt(body, headers, signal, timeoutMs, clock);
    return first.staleConnection && !signal.aborted ? (await this.#attempt(body, headers, signal, timeoutMs, clock)).failure : first.failure;
  }

  /** Closes the kept-alive connection (a request in flight is ended by its signal). */
  close(): void {
    this.#agent.destroy();
  }

  #attempt(body: string, headers: Record<string, string>, signal: AbortSignal, timeoutMs: number, clock: Clock): Promise<{ failure: string | undefined; staleConnection?: boolean }> {
    return new Promise((resolve) => {
      let status: number | undefined;
      let settled = false;
      const req = this.#request(this.#url, { method: 'POST', agent: this.#agent, headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) } });
      const settle = (failure: string | undefined, staleConnection = false) => {
        if (settled) return;
        settled = true;
        clock.clearTimeout(timer);
        signal.removeEventListener('abort', abort);
        resolve({ failure, staleConnection });
      };
      const answered = () => settle(status !== undefined && status >= 200 && status <= 299 ? undefined : `answered ${status}`);
      const timer = clock.setTimeout(() => {
        req.destroy();
        // An answer whose body takes this long still counts: its status came.
        if (status !== undefined) answered();
        else settle(`no answer within ${timeoutMs} ms`);
      }, timeoutMs);
      const abort = () => {
        req.destroy();
        settle('abandoned');
      };
      signal.addEventListener('abort', abort, { once: true });
      req.on('response', (res: IncomingMessage) => {
        status = res.statusCode ?? 0;
        // The body is not read: drained and dropped, so that the connection is free again.
        res.resume();
        res.on('error', () => {});
        res.on('close', answered);
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (status !== undefined) return answered();
        settle(error.message, req.reusedSocket && error.code === 'ECONNRESET');
      });
      req.end(body);
    });
  }
}
