/**
 * @module
 * Webhooks: what happens on channels and to users, told to the application's backend.
 * - `channel.occupied` when the first member comes to a channel with join/leave events,
 *   `channel.vacated` when the last one has left (after the grace window: the same debouncing as
 *   join/leave). Every node following the channel sees these: they are claimed (below).
 * - `user.online` when a user's (a token's `sub`) first connection anywhere in the cluster
 *   appears, `user.offline` once its last one has been gone for the grace window
 *   (core/user-presence.ts). The engine tells each to one node only: no claim.
 * - Sent only to receivers whose filter names them: `subscribe` and `unsubscribe` (a session,
 *   this node's), `publish` (a message published through this node: its channel and id, not its
 *   data). Each happens on one node: no claim.
 *
 * Each event goes through three steps, none of them on the publish or delivery path:
 * 1. **Claim** (channel events only). Every node following the channel sees the transition; the one whose
 *    `engine.claim(type + channel)` wins sends it (SET NX on Redis). Two transitions of one type
 *    on one channel are at least a grace window apart (a vacated needs a member gone that long,
 *    and an occupied a vacated before it), so a claim lasting half of it tells one from the next.
 * 2. **Queue**, per receiver, bounded: past `maxPending` events not yet sent, the oldest goes
 *    (counted, logged).
 * 3. **Send**, per receiver, one request at a time so a channel's (and a user's) events arrive in order: the
 *    events queued so far in one batch, `{"events": [...]}`, signed; retried on a failure or a
 *    non-2xx answer with exponential back-off and jitter, `attempts` times at most, then dropped.
 *    A slow or failing receiver holds up only its own queue.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { Clock, Timer } from '../core/clock.js';
import type { Engine } from '../core/engine.js';
import type { ChannelTransition } from '../core/presence-events.js';
import type { Logger } from './logger.js';

export const WEBHOOK_EVENT_TYPES = ['channel.occupied', 'channel.vacated', 'user.online', 'user.offline', 'subscribe', 'unsubscribe', 'publish'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
/** What a receiver without a filter is sent; the others only to receivers whose filter names them. */
export const DEFAULT_WEBHOOK_EVENTS: readonly WebhookEventType[] = ['channel.occupied', 'channel.vacated', 'user.online', 'user.offline'];
/** Seen by every node following the channel: one claims each (see above). */
const CLAIMED_EVENTS: ReadonlySet<WebhookEventType> = new Set(['channel.occupied', 'channel.vacated']);

/** A receiver: its URL, and the events it wants (DEFAULT_WEBHOOK_EVENTS when unset). */
export type WebhookTarget = string | { readonly url: string; readonly events?: readonly WebhookEventType[] };

/** What a receiver is sent, in `{"events": [...]}`. */
export interface WebhookEvent {
  /** Unique per event; the same on every retry (the receiver may see an event twice: at least once). */
  readonly id: string;
  readonly type: WebhookEventType;
  /** When the transition was seen, ms since the epoch. */
  readonly at: number;
  /** channel.*, subscribe, unsubscribe (the channel or pattern), publish. */
  readonly channel?: string;
  /** user.* (the token's `sub`); subscribe, unsubscribe when the session has a token. */
  readonly user?: string;
  /** subscribe, unsubscribe: the session's public id. */
  readonly session?: string;
  /** publish: the message's id. */
  readonly messageId?: string;
}

/** What emit() is given: an event without its id (made here) and time (now, unless given). */
export type WebhookEventFields = Omit<WebhookEvent, 'id' | 'at'> & { readonly at?: number };

/** The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`. */
export const SIGNATURE_HEADER = 'Herald-Signature';
/** Events sent in one request at most. */
export const MAX_BATCH_EVENTS = 100;
/** The longest wait between two attempts. */
const MAX_BACKOFF_MS = 5 * 60_000;
/** A receiver that has not answered within this long has failed the attempt. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface WebhookOptions {
  readonly targets: readonly WebhookTarget[];
  /** The filter of the targets given as bare URLs; DEFAULT_WEBHOOK_EVENTS when unset. */
  readonly events: readonly WebhookEventType[] | undefined;
  readonly secret: string;
  readonly maxPending: number;
  readonly attempts: number;
  /** The first wait before a retry; each next one doubles, with jitter. */
  readonly retryMs: number;
  /** How long a claim on an event lasts: half the grace window. */
  readonly claimMs: number;
}

/** `t=…,v1=…` for `body` sent at `unixSeconds`. */
export function webhookSignature(secret: string, unixSeconds: number, body: string): string {
  return `t=${unixSeconds},v1=${createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex')}`;
}

/** Whether a target's URL is one webhooks can be sent to. */
export function isWebhookUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** Whether `value` is a list of targets createHerald takes (URLs, or `{url, events?}`). */
export function isWebhookTargets(value: unknown): boolean {
  return (
    Array.isArray(value) &&
    value.every((target) => {
      if (typeof target === 'string') return isWebhookUrl(target);
      if (typeof target !== 'object' || target === null) return false;
      const { url, events, ...rest } = target as Record<string, unknown>;
      return Object.keys(rest).length === 0 && typeof url === 'string' && isWebhookUrl(url) && (events === undefined || isWebhookEvents(events));
    })
  );
}

export function isWebhookEvents(value: unknown): value is WebhookEventType[] {
  return Array.isArray(value) && value.length > 0 && value.every((type) => (WEBHOOK_EVENT_TYPES as readonly unknown[]).includes(type));
}

interface Receiver {
  readonly url: string;
  readonly events: ReadonlySet<WebhookEventType>;
  /** Events not yet sent; the batch in flight (or waiting to be retried) is apart. */
  readonly queue: WebhookEvent[];
  sending: boolean;
  retry: Timer | undefined;
  abort: AbortController | undefined;
}

export interface WebhookCounters {
  /** Events dropped: past `maxPending`, after the last attempt, or unclaimed (the engine failed). */
  dropped(count: number, reason: 'pending' | 'attempts' | 'claim'): void;
  /** A request answered 2xx, or failed. */
  sent(ok: boolean): void;
}

export class Webhooks {
  readonly #receivers: Receiver[];
  #closed = false;

  constructor(
    private readonly engine: Engine,
    private readonly clock: Clock,
    private readonly options: WebhookOptions,
    private readonly logger: Logger,
    private readonly counters: WebhookCounters,
  ) {
    this.#receivers = options.targets.map((target) => {
      const { url, events = options.events ?? DEFAULT_WEBHOOK_EVENTS } = typeof target === 'string' ? { url: target } : target;
      return { url, events: new Set(events), queue: [], sending: false, retry: undefined, abort: undefined };
    });
  }

  /** Events waiting to be sent (not those in flight), every receiver's. */
  get pending(): number {
    return this.#receivers.reduce((sum, receiver) => sum + receiver.queue.length, 0);
  }

  /** Whether some receiver's filter names `type` (what is not wanted need not be tracked). */
  wants(type: WebhookEventType): boolean {
    return this.#receivers.some((receiver) => wants(receiver, type));
  }

  /** A presence transition: occupied and vacated become events (joins and leaves are not webhooks). */
  transition(transition: ChannelTransition): void {
    if (transition.kind === 'occupied' || transition.kind === 'vacated') this.emit({ type: `channel.${transition.kind}`, channel: transition.channel });
  }

  /**
   * Sends an event to the receivers that want it: a channel event if this node wins its claim,
   * any other at once. Returns at once: nothing waits for the claim or the send.
   */
  emit(fields: WebhookEventFields): void {
    const { type } = fields;
    if (this.#closed || !this.wants(type)) return;
    const event: WebhookEvent = { id: randomUUID(), ...fields, at: fields.at ?? this.clock.now() };
    if (!CLAIMED_EVENTS.has(type)) return this.#enqueue(event);
    const channel = fields.channel!;
    // In order per channel: a claim is one Redis round trip, and the claims of one channel's
    // transitions (a grace window apart) never overlap.
    this.engine.claim(`webhook:${type}:${channel}`, this.options.claimMs).then(
      (won) => won && this.#enqueue(event),
      (error: unknown) => {
        // No node can tell whether another sent it: dropped here rather than sent twice.
        this.counters.dropped(1, 'claim');
        this.logger.warn('webhook events dropped', { type, channel, dropped: 1, reason: `the engine could not claim it: ${(error as Error).message ?? String(error)}` });
      },
    );
  }

  close(): void {
    this.#closed = true;
    for (const receiver of this.#receivers) {
      if (receiver.retry !== undefined) this.clock.clearTimeout(receiver.retry);
      receiver.abort?.abort();
      receiver.queue.length = 0;
    }
  }

  #enqueue(event: WebhookEvent): void {
    if (this.#closed) return;
    for (const receiver of this.#receivers) {
      if (!wants(receiver, event.type)) continue;
      receiver.queue.push(event);
      const over = receiver.queue.length - this.options.maxPending;
      if (over > 0) {
        // The oldest go: what the backend needs most is where channels are now.
        receiver.queue.splice(0, over);
        this.counters.dropped(over, 'pending');
        this.logger.warn('webhook events dropped', { url: receiver.url, dropped: over, reason: `more than ${this.options.maxPending} pending` });
      }
      if (!receiver.sending && receiver.retry === undefined) void this.#send(receiver, 1);
    }
  }

  /** Sends the events queued (at most a batch), then the next, one request at a time; `batch` is retried as it was. */
  async #send(receiver: Receiver, attempt: number, batch = receiver.queue.splice(0, MAX_BATCH_EVENTS)): Promise<void> {
    receiver.sending = true;
    const body = JSON.stringify({ events: batch });
    const signature = webhookSignature(this.options.secret, Math.floor(this.clock.now() / 1000), body);
    const abort = (receiver.abort = new AbortController());
    const timeout = this.clock.setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    let failure: string | undefined;
    try {
      const response = await fetch(receiver.url, { method: 'POST', headers: { 'Content-Type': 'application/json', [SIGNATURE_HEADER]: signature }, body, signal: abort.signal, redirect: 'error' });
      // The answer's body is not read: drop it, so the connection is free again.
      await response.body?.cancel();
      if (response.status < 200 || response.status > 299) failure = `answered ${response.status}`;
    } catch (error) {
      failure = abort.signal.aborted ? `no answer within ${REQUEST_TIMEOUT_MS} ms` : ((error as Error).message ?? String(error));
    } finally {
      this.clock.clearTimeout(timeout);
      receiver.abort = undefined;
      receiver.sending = false;
    }
    if (this.#closed) return;
    this.counters.sent(failure === undefined);
    if (failure !== undefined && attempt < this.options.attempts) {
      const delay = backoff(this.options.retryMs, attempt);
      this.logger.warn('webhook failed, will retry', { url: receiver.url, attempt, failure, retryInMs: Math.round(delay) });
      receiver.retry = this.clock.setTimeout(() => {
        receiver.retry = undefined;
        if (!this.#closed) void this.#send(receiver, attempt + 1, batch);
      }, delay);
      return;
    }
    if (failure !== undefined) {
      this.counters.dropped(batch.length, 'attempts');
      this.logger.warn('webhook events dropped', { url: receiver.url, dropped: batch.length, reason: `${attempt} attempts failed, the last ${failure}` });
    }
    if (receiver.queue.length > 0) void this.#send(receiver, 1);
  }
}

function wants(receiver: Receiver, type: WebhookEventType): boolean {
  return receiver.events.has(type);
}

/** The wait after failed attempt `attempt`: `first` doubled each time (capped), between half and all of it. */
export function backoff(first: number, attempt: number): number {
  const full = Math.min(MAX_BACKOFF_MS, first * 2 ** (attempt - 1));
  return full / 2 + Math.random() * (full / 2);
}
