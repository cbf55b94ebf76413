/**
 * @module
 * Plain-HTTP subscribers, written as a careful client in any language would: raw SSE resuming with
 * `Last-Event-ID`, REST long-poll and short-poll resuming with `?since=` the last id seen, and REST
 * polls that follow the documented cursor (`Herald-Position`, `ETag` / `If-None-Match`).
 * Each reconnects by itself after any break and reports only what the server told it.
 */
import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Recorder, TokenMint } from './recorder.js';

export interface Door {
  readonly recorder: Recorder;
  /** The Bayeux session the door's client holds now, if it is a Bayeux client. */
  readonly clientId?: string | undefined;
  start(): void;
  close(): Promise<void>;
  /** What the door saw beyond its record (which paths its deliveries took), for the run's stats. */
  summary?(): string;
}

export interface DoorContext {
  /** The port to reach Herald through (a fault proxy). */
  readonly port: number;
  readonly tokens: TokenMint | undefined;
  /** The run's seeded randomness, for doors that choose when to leave and come back. */
  readonly random: () => number;
  /** The application's route answering through `herald.piggyback`, behind the same port (undefined: the topology has none). */
  readonly appPath?: string | undefined;
}

const RETRY_MS = 100;
/** Statuses after which a careful client gives up: it was told it may not listen. */
const FINAL_STATUSES = new Set([400, 401, 403, 404]);

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const between = (random: () => number, [low, high]: readonly [number, number]) => low + random() * (high - low);

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

/**
 * `GET /sub/{target}` as `text/event-stream`, resuming with `Last-Event-ID`. With `away`, it leaves
 * now and then on its own (a phone put in a pocket) and comes back a while later — longer than a
 * short history TTL — so its resume crosses history the engine may have forgotten.
 */
export class SseDoor implements Door {
  #closed = false;
  #lastId: string | undefined;
  #current: ReturnType<typeof request> | undefined;
  #gaps = 0;
  #messages = 0;

  constructor(
    readonly recorder: Recorder,
    private readonly context: DoorContext,
    private readonly away?: { readonly stayMs: readonly [number, number]; readonly awayMs: readonly [number, number] },
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
      this.#gaps = this.#messages = 0;
      const leave = this.away === undefined ? undefined : setTimeout(() => this.#current?.destroy(), between(this.context.random, this.away.stayMs));
      const status = await this.#stream().catch(() => 0);
      clearTimeout(leave);
      this.recorder.answered(this.#gaps, this.#messages);
      this.recorder.note(`stream ended (${status === 0 ? 'broken' : `HTTP ${status}`}); resume from ${this.#lastId ?? 'now'}`);
      if (FINAL_STATUSES.has(status)) return this.recorder.stop(`HTTP ${status}`);
      await pause(this.away === undefined ? RETRY_MS : between(this.context.random, this.away.awayMs));
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
      // As EventSource does: any event's id is where the next reconnect resumes (a gap's included).
      else if (line.startsWith('id:') && this.recorder.target.indexOf('*') < 0) this.#lastId = line.slice(3).trim();
    }
    if (data === '') return;
    const parsed = JSON.parse(data);
    if (event === 'close') this.recorder.note(`event: close ${data}`);
    if (event === 'gap') {
      this.#gaps++;
      this.recorder.gap(typeof parsed.channel === 'string' ? parsed.channel : this.recorder.target, 'event: gap');
    } else if (event === 'message') {
      this.#messages++;
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
      const reply = await this.#poll(`/sub${this.recorder.target}?${query}`).catch(() => ({ status: 0, body: '', position: undefined }));
      if (FINAL_STATUSES.has(reply.status)) return this.recorder.stop(`HTTP ${reply.status}: ${reply.body.slice(0, 200)}`);
      if (reply.status !== 200) {
        this.recorder.note(`poll ${reply.status === 0 ? 'broken' : `HTTP ${reply.status}`}; again from ${this.#lastId ?? 'now'}`);
        await pause(RETRY_MS);
        continue;
      }
      const items: unknown[] = JSON.parse(reply.body);
      let messages = 0;
      for (const item of items) {
        const id = observe(this.recorder, item, this.short ? 'short-poll' : 'long-poll');
        if (id !== undefined) {
          messages++;
          this.recorder.ready();
          this.#lastId = id;
        }
      }
      this.recorder.answered(items.length - messages, messages);
      // Told of a gap and nothing else: go on from where the answer says (README), not from the
      // id the gap is about, which would only be told of it again.
      if (messages === 0 && items.length > 0 && reply.position !== undefined) this.#lastId = reply.position;
      if (short && items.length === 0) await pause(150);
    }
  }

  async #poll(path: string): Promise<{ status: number; body: string; position: string | undefined }> {
    const headers = await authHeaders(this.context.tokens);
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: this.context.port, path, headers, agent: false });
      this.#current = req;
      req.on('error', reject);
      req.on('response', (res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        const position = res.headers['herald-position'];
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, position: typeof position === 'string' ? position : undefined }));
        res.on('error', reject);
      });
      req.end();
    });
  }
}

/**
 * A poller that follows the README's "Plain HTTP" cursor and nothing else: every answer's
 * `Herald-Position` is where it continues from. Short (`?wait=0`): sent back as
 * `If-None-Match: "<cursor>"`, a 304 meaning nothing new. Long (held, e.g. on a pattern): sent
 * back as `?since=<cursor>`. Without a cursor in an answer it has none: it polls from "now".
 * Counts answers that carry a gap and nothing else: a server answering only that makes it spin.
 */
export class CursorPollDoor implements Door {
  #closed = false;
  #cursor: string | undefined;
  #warned = false;
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
    const note = this.short ? 'cursor short-poll' : 'cursor long-poll';
    while (!this.#closed) {
      const query = new URLSearchParams();
      const headers: Record<string, string> = {};
      if (this.short) {
        query.set('wait', '0');
        if (this.#cursor !== undefined) headers['If-None-Match'] = `"${this.#cursor}"`;
      } else if (this.#cursor !== undefined) {
        query.set('since', this.#cursor);
      }
      const reply = await poll(this.context, `/sub${this.recorder.target}?${query}`, headers, (req) => (this.#current = req)).catch(() => ({ status: 0, body: '', position: undefined }));
      if (FINAL_STATUSES.has(reply.status)) return this.recorder.stop(`HTTP ${reply.status}: ${reply.body.slice(0, 200)}`);
      if (reply.status !== 200 && reply.status !== 304) {
        this.recorder.note(`poll ${reply.status === 0 ? 'broken' : `HTTP ${reply.status}`}; again from ${this.#cursor ?? 'now'}`);
        await pause(RETRY_MS);
        continue;
      }
      // From the first answer on, the client has a place in the channel: what follows is owed.
      this.recorder.ready();
      let gaps = 0;
      let messages = 0;
      for (const item of reply.status === 200 ? (JSON.parse(reply.body) as unknown[]) : []) {
        if ((item as { gap?: unknown })?.gap === true) gaps++;
        else messages++;
        observe(this.recorder, item, note);
      }
      this.recorder.answered(gaps, messages);
      // Said once per stretch without one: a client left without a cursor polls on from "now".
      if (reply.position === undefined && (this.#cursor !== undefined || !this.#warned)) this.recorder.note(`answer ${reply.status} named no position`);
      this.#warned ||= reply.position === undefined;
      this.#cursor = reply.position;
      if (this.short && messages === 0) await pause(150);
    }
  }
}

function poll(
  context: DoorContext,
  path: string,
  extra: Record<string, string>,
  started: (req: ReturnType<typeof request>) => void,
): Promise<{ status: number; body: string; position: string | undefined }> {
  return authHeaders(context.tokens).then(
    (auth) =>
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: context.port, path, headers: { ...auth, ...extra }, agent: false });
        started(req);
        req.on('error', reject);
        req.on('response', (res: IncomingMessage) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => {
            const position = res.headers['herald-position'];
            resolve({ status: res.statusCode ?? 0, body, position: typeof position === 'string' ? position : undefined });
          });
          res.on('error', reject);
        });
        req.end();
      }),
  );
}
