/**
 * @module
 * Plain-HTTP subscribers, written as a careful client in any language would: raw SSE resuming with
 * `Last-Event-ID`, and REST long-poll and short-poll resuming with `?since=` the last id seen.
 * Each reconnects by itself after any break and reports only what the server told it.
 */
import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Recorder, TokenMint } from './recorder.js';

export interface Door {
  readonly recorder: Recorder;
  start(): void;
  close(): Promise<void>;
}

export interface DoorContext {
  /** The port to reach Herald through (a fault proxy). */
  readonly port: number;
  readonly tokens: TokenMint | undefined;
}

const RETRY_MS = 100;
/** Statuses after which a careful client gives up: it was told it may not listen. */
const FINAL_STATUSES = new Set([400, 401, 403, 404]);

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function authHeaders(tokens: TokenMint | undefined): Promise<Record<string, string>> {
  return tokens === undefined ? {} : { Authorization: `Bearer ${await tokens.fresh()}` };
}

/** Parses `{id, channel, data}` items and `{gap:true}` items of a long-poll reply or an SSE event. */
function observe(recorder: Recorder, item: any, note: string): string | undefined {
  if (item?.gap === true) {
    recorder.gap(typeof item.channel === 'string' ? item.channel : recorder.target, note);
    return undefined;
  }
  recorder.deliver(String(item?.channel), item?.data, item?.id);
  return typeof item?.id === 'string' ? item.id : undefined;
}

/** `GET /sub/{target}` as `text/event-stream`, resuming with `Last-Event-ID`. */
export class SseDoor implements Door {
  #closed = false;
  #lastId: string | undefined;
  #current: ReturnType<typeof request> | undefined;

  constructor(
    readonly recorder: Recorder,
    private readonly context: DoorContext,
  ) {}

  start(): void {
    void this.#loop();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#current?.destroy();
  }

  async #loop(): Promise<void> {
    while (!this.#closed) {
      const status = await this.#stream().catch(() => 0);
      this.recorder.note(`stream ended (${status === 0 ? 'broken' : `HTTP ${status}`}); resume from ${this.#lastId ?? 'now'}`);
      if (FINAL_STATUSES.has(status)) return this.recorder.stop(`HTTP ${status}`);
      await pause(RETRY_MS);
    }
  }

  async #stream(): Promise<number> {
    const headers: Record<string, string> = { Accept: 'text/event-stream', ...(await authHeaders(this.context.tokens)) };
    if (this.#lastId !== undefined) headers['Last-Event-ID'] = this.#lastId;
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: this.context.port, path: `/sub${this.recorder.target}`, headers, agent: false });
      this.#current = req;
      req.on('error', reject);
      req.on('response', (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          res.resume();
          return resolve(res.statusCode ?? 0);
        }
        this.recorder.ready();
        let pending = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          pending += chunk;
          let end: number;
          while ((end = pending.indexOf('\n\n')) >= 0) {
            this.#event(pending.slice(0, end));
            pending = pending.slice(end + 2);
          }
        });
        res.on('error', () => resolve(0));
        res.on('close', () => resolve(0));
      });
      req.end();
    });
  }

  #event(block: string): void {
    let event = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data += line.slice(5).trim();
    }
    if (data === '') return;
    const parsed = JSON.parse(data);
    if (event === 'close') this.recorder.note(`event: close ${data}`);
    if (event === 'gap') this.recorder.gap(typeof parsed.channel === 'string' ? parsed.channel : this.recorder.target, 'event: gap');
    else if (event === 'message') {
      const id = observe(this.recorder, parsed, 'sse');
      // Ids are per channel: only an exact channel's stream can resume from one.
      if (id !== undefined) this.#lastId = id;
    }
  }
}

/** `GET /sub/{channel}?since=<last id>`: held (long-poll) or answered at once (`wait=0`, short-poll). */
export class PollDoor implements Door {
  #closed = false;
  #lastId: string | undefined;
  #current: ReturnType<typeof request> | undefined;

  constructor(
    readonly recorder: Recorder,
    private readonly context: DoorContext,
    private readonly short: boolean,
  ) {}

  start(): void {
    void this.#loop();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#current?.destroy();
  }

  async #loop(): Promise<void> {
    while (!this.#closed) {
      // Without a cursor yet, even a short-poller holds its first poll: `?wait=0` without `since`
      // answers `[]` and says nothing of where the channel stands.
      const short = this.short && this.#lastId !== undefined;
      const query = new URLSearchParams();
      if (this.#lastId !== undefined) query.set('since', this.#lastId);
      if (short) query.set('wait', '0');
      const reply = await this.#poll(`/sub${this.recorder.target}?${query}`).catch(() => ({ status: 0, body: '' }));
      if (FINAL_STATUSES.has(reply.status)) return this.recorder.stop(`HTTP ${reply.status}: ${reply.body.slice(0, 200)}`);
      if (reply.status !== 200) {
        this.recorder.note(`poll ${reply.status === 0 ? 'broken' : `HTTP ${reply.status}`}; again from ${this.#lastId ?? 'now'}`);
        await pause(RETRY_MS);
        continue;
      }
      const items: unknown[] = JSON.parse(reply.body);
      for (const item of items) {
        const id = observe(this.recorder, item, this.short ? 'short-poll' : 'long-poll');
        if (id !== undefined) {
          this.recorder.ready();
          this.#lastId = id;
        }
      }
      if (short && items.length === 0) await pause(150);
    }
  }

  async #poll(path: string): Promise<{ status: number; body: string }> {
    const headers = await authHeaders(this.context.tokens);
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: this.context.port, path, headers, agent: false });
      this.#current = req;
      req.on('error', reject);
      req.on('response', (res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.end();
    });
  }
}
