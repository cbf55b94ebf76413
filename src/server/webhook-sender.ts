/**
 * @module
 * Sends what the webhook outbox holds (core/outbox.ts) to the receivers — from the one node of
 * the cluster that holds the outbox's lease. Every node runs a sender; each tries to take the
 * lease every third of its time, and the holder renews it. The holder runs one pump per receiver:
 * it reads the events after the receiver's cursor (at most a batch), POSTs them signed
 * (webhook-request.ts), retries with exponential back-off and jitter until the receiver answers
 * 2xx or the attempts run out, then moves the cursor past them. So a receiver has one request in
 * flight and gets the events in the outbox's order; a slow one holds up only its own pump.
 *
 * A pump with nothing to send waits: for a wake (an event stored on this node) or its next poll
 * (events stored on other nodes). Woken, it lingers `batchWaitMs` before reading, so that events
 * fired together (a publish burst, a crowd joining) go in one request rather than one each: a
 * receiver answering at once would otherwise cost a request, a read and a cursor move per event.
 * After a batch that was not full it reads again only when woken or polled (the outbox held no
 * more when read), so each request costs one read and one cursor move.
 *
 * When the holder dies, its lease lapses and another node takes it, resuming from the cursors: a
 * batch in flight then may be sent again, with the same event ids (at least once). When the holder
 * loses the lease (Redis unreachable, a renewal too late, a cursor it may no longer move) it stops
 * at once: requests in flight are abandoned, the events stay for the next holder. A holder that
 * shuts down gives the lease up, so the next one need not wait for it to lapse.
 */
import { createHash, createHmac } from 'node:crypto';
import type { Clock, Timer } from '../core/clock.js';
import type { Outbox, OutboxEntry } from '../core/outbox.js';
import type { Logger } from './logger.js';
import { WebhookEndpoint } from './webhook-request.js';

/** The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`. */
export const SIGNATURE_HEADER = 'Herald-Signature';
/** Events sent in one request at most. */
export const MAX_BATCH_EVENTS = 100;
/** The longest wait between two attempts. */
const MAX_BACKOFF_MS = 5 * 60_000;
/** A receiver that has not answered within this long has failed the attempt. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface WebhookCounters {
  /** Events dropped: past the pending bound, after the last attempt, or not stored (the engine failed). */
  dropped(count: number, reason: 'pending' | 'attempts' | 'engine'): void;
  /** A request answered 2xx, or failed. */
  sent(ok: boolean): void;
}

/** `t=…,v1=…` for `body` sent at `unixSeconds`. */
export function webhookSignature(secret: string, unixSeconds: number, body: string): string {
  return `t=${unixSeconds},v1=${createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex')}`;
}

/** The wait after failed attempt `attempt`: `first` doubled each time (capped), between half and all of it. */
export function backoff(first: number, attempt: number): number {
  const full = Math.min(MAX_BACKOFF_MS, first * 2 ** (attempt - 1));
  return full / 2 + Math.random() * (full / 2);
}

export interface SenderOptions {
  readonly secret: string;
  readonly attempts: number;
  readonly retryMs: number;
  /** The pending bound, as the log line names it. */
  readonly maxPending: number;
  /** How long the lease lasts unless renewed; renewed every third of it. */
  readonly leaseMs: number;
  /** How often an idle receiver looks for events added on other nodes (this node's wake it at once). */
  readonly pollMs: number;
  /**
   * How long a receiver woken by a new event waits before reading the outbox, so that events
   * fired together go in one request (0: it reads at once).
   */
  readonly batchWaitMs: number;
}

export interface SenderReceiver {
  readonly url: string;
  /** Whether the receiver wants events of `type`. */
  wants(type: string): boolean;
}

interface Pump extends SenderReceiver {
  /** Its cursor's name in the outbox (the URL may carry a secret: not in key names). */
  readonly reader: string;
  /** Where its requests go, over a connection kept alive. */
  readonly endpoint: WebhookEndpoint;
  /** Ends the pump's idle wait, when it waits. */
  wake: (() => void) | undefined;
  /** Woken while not waiting: the next wait ends at once. */
  woken: boolean;
}

export class WebhookSender {
  readonly #pumps: Pump[];
  #renewer: Timer | undefined;
  #renewing = false;
  /** Aborted when this node stops sending: its pumps end, their requests and waits with them. */
  #sending: AbortController | undefined;
  /** Until when the lease surely lasts (from the start of its last renewal). */
  #heldUntil = 0;
  #closed = false;

  constructor(
    private readonly outbox: Outbox,
    receivers: readonly SenderReceiver[],
    private readonly clock: Clock,
    private readonly options: SenderOptions,
    private readonly logger: Logger,
    private readonly counters: WebhookCounters,
  ) {
    this.#pumps = receivers.map((receiver) => ({ ...receiver, wants: receiver.wants, reader: createHash('sha256').update(receiver.url).digest('hex').slice(0, 24), endpoint: new WebhookEndpoint(receiver.url), wake: undefined, woken: false }));
    this.#renewer = clock.setInterval(() => void this.#renew(), Math.max(1, options.leaseMs / 3));
    void this.#renew();
  }

  /** An event was added on this node: idle receivers look now rather than at their next poll. */
  wake(): void {
    for (const pump of this.#pumps) {
      if (pump.wake !== undefined) pump.wake();
      else pump.woken = true;
    }
  }

  /** Stops sending (requests in flight are abandoned; their events stay in the outbox) and gives the lease up. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#renewer !== undefined) this.clock.clearInterval(this.#renewer);
    const wasSending = this.#sending !== undefined;
    this.#stop();
    for (const pump of this.#pumps) pump.endpoint.close();
    if (wasSending) await this.outbox.release().catch((error: unknown) => this.logger.warn('webhook lease not given up', { error: message(error) }));
  }

  async #renew(): Promise<void> {
    if (this.#renewing || this.#closed) return;
    this.#renewing = true;
    const startedAt = this.clock.now();
    let held = false;
    let failure: string | undefined;
    try {
      held = await this.outbox.lease(this.options.leaseMs);
    } catch (error) {
      failure = message(error);
    } finally {
      this.#renewing = false;
    }
    if (this.#closed) return;
    if (held) this.#heldUntil = startedAt + this.options.leaseMs;
    if (held && this.#sending === undefined) this.#start();
    else if (!held && this.#sending !== undefined) this.#lost(failure ?? 'another node holds the lease');
  }

  #start(): void {
    const sending = (this.#sending = new AbortController());
    this.logger.info('webhooks: this node sends them');
    for (const pump of this.#pumps) void this.#pump(pump, sending.signal);
  }

  #stop(): void {
    this.#sending?.abort();
    this.#sending = undefined;
  }

  #lost(reason: string): void {
    if (this.#sending === undefined) return;
    this.#stop();
    this.logger.warn('webhooks: this node stopped sending them (lease lost)', { reason });
  }

  #holds(): boolean {
    if (this.clock.now() < this.#heldUntil) return true;
    this.#lost('the lease was not renewed in time');
    return false;
  }

  async #pump(pump: Pump, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let entries: readonly OutboxEntry[];
      // Whatever this node stored before this read is in it: a wake from now on is for later events.
      pump.woken = false;
      try {
        const read = await this.outbox.read(pump.reader, MAX_BATCH_EVENTS);
        entries = read.entries;
        if (signal.aborted) return;
        if (read.reset) this.logger.warn('webhooks: the outbox lost its data (Redis restarted empty?): sending from its start', { url: pump.url });
        if (read.skipped > 0) {
          this.counters.dropped(read.skipped, 'pending');
          this.logger.warn('webhook events dropped', { url: pump.url, dropped: read.skipped, reason: `more than ${this.options.maxPending} pending (the outbox keeps that many, of every type)` });
        }
      } catch (error) {
        // Redis is away: the lease goes with it (the renewal fails), or the next read goes through.
        this.logger.warn('webhook outbox unreadable', { url: pump.url, error: message(error) });
        await this.#wait(signal, this.options.leaseMs / 3);
        continue;
      }
      if (entries.length === 0) {
        await this.#idle(pump, signal);
        continue;
      }
      const wanted = entries.filter((entry) => pump.wants(typeOf(entry.event)));
      if (wanted.length > 0) await this.#deliver(pump, wanted, signal);
      if (signal.aborted) return;
      // Sent (or given up on): past them, unwanted ones included. A cursor that cannot be
      // moved now is moved later, after the batch is sent again (at least once).
      const acked = await this.outbox.ack(pump.reader, entries[entries.length - 1]!).catch((error: unknown) => {
        this.logger.warn('webhook cursor not moved', { url: pump.url, error: message(error) });
        return undefined;
      });
      if (acked === false) this.#lost('another node holds the lease');
      if (acked === undefined) await this.#wait(signal, this.options.leaseMs / 3);
      // A full batch: more may be waiting, read at once. Else the outbox held no more when it was
      // read: only a wake (this node stored more since) or the poll (other nodes' events) has any.
      else if (entries.length < MAX_BATCH_EVENTS) await this.#idle(pump, signal);
    }
  }

  /** Waits for a wake or the next poll; after a wake, lingers `batchWaitMs` so that the events fired with it come too. */
  async #idle(pump: Pump, signal: AbortSignal): Promise<void> {
    const woken = await this.#wait(signal, this.options.pollMs, pump);
    if (woken && this.options.batchWaitMs > 0) await this.#wait(signal, this.options.batchWaitMs);
  }

  /** Sends `entries` until the receiver answers 2xx or the attempts run out (then they are dropped). */
  async #deliver(pump: Pump, entries: readonly OutboxEntry[], signal: AbortSignal): Promise<void> {
    // The events as stored, byte for byte: whatever fields they carry go through unchanged.
    const body = `{"events":[${entries.map((entry) => entry.event).join(',')}]}`;
    for (let attempt = 1; ; attempt++) {
      if (!this.#holds()) return;
      const failure = await this.#post(pump, body, signal);
      if (signal.aborted) return;
      this.counters.sent(failure === undefined);
      if (failure === undefined) return;
      if (attempt >= this.options.attempts) {
        this.counters.dropped(entries.length, 'attempts');
        this.logger.warn('webhook events dropped', { url: pump.url, dropped: entries.length, reason: `${attempt} attempts failed, the last ${failure}` });
        return;
      }
      const delay = backoff(this.options.retryMs, attempt);
      this.logger.warn('webhook failed, will retry', { url: pump.url, attempt, failure, retryInMs: Math.round(delay) });
      await this.#wait(signal, delay);
    }
  }

  /** One attempt: undefined when answered 2xx, else what went wrong. */
  #post(pump: Pump, body: string, signal: AbortSignal): Promise<string | undefined> {
    const signature = webhookSignature(this.options.secret, Math.floor(this.clock.now() / 1000), body);
    return pump.endpoint.post(body, { 'Content-Type': 'application/json', [SIGNATURE_HEADER]: signature }, signal, REQUEST_TIMEOUT_MS, this.clock);
  }

  /**
   * Waits `ms`, or less: until this node stops sending, or (with `pump`) until it is woken.
   * Resolves with whether it was woken (then at once if it was woken before).
   */
  #wait(signal: AbortSignal, ms: number, pump?: Pump): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (pump?.woken === true) {
      pump.woken = false;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const done = (woken: boolean) => {
        this.clock.clearTimeout(timer);
        signal.removeEventListener('abort', stop);
        if (pump !== undefined) pump.wake = undefined;
        resolve(woken);
      };
      const stop = () => done(false);
      const timer = this.clock.setTimeout(stop, ms);
      signal.addEventListener('abort', stop, { once: true });
      if (pump !== undefined) pump.wake = () => done(true);
    });
  }
}

/** The event's type, to filter on (an entry that is not an event has none: no receiver wants it). */
function typeOf(event: string): string {
  try {
    const type = (JSON.parse(event) as { type?: unknown }).type;
    return typeof type === 'string' ? type : '';
  } catch {
    return '';
  }
}

function message(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}
