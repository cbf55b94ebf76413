/**
 * @module
 * The Herald client's last-resort paths (issue 19): interval polling, where no connect is ever
 * held, and piggyback, where what is queued for the session rides on the replies to the client's
 * other requests — its publishes, and the application's own endpoint called with `herald.fetch()`
 * (the server answering through `herald.piggyback`). Whatever path a message takes, the subscriber
 * must see it once and in order. A fetch that watches the wire tells the session's clientId (for
 * faults that end it from elsewhere) and counts the deliveries per path, so a run shows the paths
 * were taken.
 */
import { HeraldClientDoor } from './bayeux-doors.js';
import type { DoorContext } from './rest-doors.js';
import { APP_BODY, APP_STATUS } from './recorder.js';
import type { Recorder } from './recorder.js';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Deliveries seen on the wire, by the kind of request whose reply carried them. */
type Paths = { connect: number; publish: number; meta: number; app: number };

export class HeraldPollDoor extends HeraldClientDoor {
  #clientId: string | undefined;
  protected readonly paths: Paths = { connect: 0, publish: 0, meta: 0, app: 0 };
  protected closed = false;
  readonly #lastOnWire = new Map<string, string>();
  #repeats = 0;

  constructor(recorder: Recorder, context: DoorContext, pollIntervalMs: number, maxNetworkDelayMs = 3000) {
    super(recorder, context, 'long-polling', {
      maxNetworkDelayMs,
      intervalPolling: 'always',
      pollIntervalMs,
      // Never longer than this, whatever the server's max-interval: deliveries must keep moving.
      maxPollIntervalMs: Math.max(pollIntervalMs, 1000),
      fetch: (input, init) => this.#watch(input, init),
    });
  }

  get clientId(): string | undefined {
    return this.#clientId;
  }

  /** Deliveries per path (for the run's stats). */
  summary(): string {
    return `${this.recorder.name} deliveries on connect replies ${this.paths.connect}, publish replies ${this.paths.publish}, other Bayeux replies ${this.paths.meta}, app replies ${this.paths.app}, ids repeated or out of order on the wire within a session ${this.#repeats}`;
  }

  override async close(): Promise<void> {
    this.closed = true;
    await super.close();
  }

  async #watch(input: RequestInfo | URL, init: RequestInit | undefined): Promise<Response> {
    const body = typeof init?.body === 'string' ? init.body : undefined;
    const named = new Headers(init?.headers).get('Herald-Session') ?? undefined;
    const clientId = named ?? (body === undefined ? undefined : /"clientId":"([^"]+)"/.exec(body)?.[1]);
    if (clientId !== undefined && named === undefined) this.#clientId = clientId;
    const response = await fetch(input, init);
    const piggybacked = response.headers.get('Herald-Deliveries') !== null;
    if (!response.ok && !piggybacked) return response;
    if (!piggybacked && body?.startsWith('[') !== true) return response;
    const path: keyof Paths = piggybacked ? 'app' : body!.includes('"/meta/connect"') ? 'connect' : body!.includes('"/meta/') ? 'meta' : 'publish';
    // A copy of the body: the client reads the original. One cut on its way is not counted.
    const parsed: unknown = await response
      .clone()
      .json()
      .catch(() => undefined);
    const messages: unknown = piggybacked ? (parsed as { herald?: unknown } | undefined)?.herald : parsed;
    if (!Array.isArray(messages)) return response;
    for (const message of messages) {
      if (message?.data === undefined || typeof message.channel !== 'string' || message.channel.startsWith('/meta/')) continue;
      this.paths[path]++;
      this.#onTheWire(clientId, message.channel, message.ext?.herald?.id);
    }
    return response;
  }

  /**
   * The server sends a session each message once, in order, whichever reply carries it: the
   * client would hide a repeat (it drops ids it has seen), so it is counted here.
   */
  #onTheWire(clientId: string | undefined, channel: string, id: unknown): void {
    if (clientId === undefined || typeof id !== 'string') return;
    const key = `${clientId} ${channel}`;
    const last = this.#lastOnWire.get(key);
    if (last !== undefined && id <= last) {
      this.#repeats++;
      if (this.#repeats <= 3) this.recorder.note(`on the wire: ${channel} id ${id} after ${last} in one session`);
    } else this.#lastOnWire.set(key, id);
  }
}

/**
 * Polls seldom, and publishes often on a channel of its own and calls the application's route with
 * `herald.fetch()` at a steady rate: most of its deliveries come on those replies, not on polls.
 * The application's answer must come back as it was sent, deliveries taken off.
 */
export class HeraldPiggybackDoor extends HeraldPollDoor {
  constructor(recorder: Recorder, context: DoorContext) {
    // Shorter than most stalls: a reply held up by one comes after the next poll's (herald.fetch's late path).
    super(recorder, context, 1000, 1000);
  }

  override start(): void {
    super.start();
    void this.#publishLoop();
    if (this.context.appPath !== undefined) void this.#appLoop(this.context.appPath);
  }

  async #publishLoop(): Promise<void> {
    const channel = `/ck/own/${this.recorder.name}`;
    for (let n = 0; !this.closed; n++) {
      // Rejected when the connection breaks with it in flight; the next one goes on the next session.
      await this.client?.publish(channel, { n }).catch(() => undefined);
      await pause(30);
    }
  }

  async #appLoop(path: string): Promise<void> {
    const url = `http://127.0.0.1:${this.context.port}${path}`;
    while (!this.closed) {
      const answer = await this.client
        ?.fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":""}' })
        .then(async (response) => ({ status: response.status, text: await response.text() }))
        .catch(() => undefined);
      // A cut or a stall: the fetch failed (the client resumes what it may have carried from history).
      if (answer !== undefined && !this.closed && (answer.status !== APP_STATUS || answer.text !== JSON.stringify(APP_BODY))) {
        this.recorder.stop(`the application's reply came back altered through herald.fetch: HTTP ${answer.status} ${answer.text.slice(0, 200)}`);
        return;
      }
      await pause(answer === undefined ? 100 : 40);
    }
  }
}
