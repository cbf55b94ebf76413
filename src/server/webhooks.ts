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
 * Each event goes through two steps, none of them on the publish or delivery path:
 * 1. **Store**, once cluster-wide, in the engine's outbox (core/outbox.ts). A channel event is
 *    seen by every node following the channel: each adds it with a claim on its type and channel,
 *    the first add stores it and the others are refused (claim and store in one step). Two
 *    transitions of one type on one channel are at least a grace window apart (a vacated needs a
 *    member gone that long, and an occupied a vacated before it), so a claim lasting half of it
 *    tells one from the next. Other events are stored by the one node they happen on. On Redis
 *    the outbox outlives the node: its death loses no event. It keeps `maxPending` events at
 *    most; a receiver further behind is told of (and counts, logs) the ones it lost. An event
 *    the engine cannot store (Redis unreachable) is dropped, counted, logged.
 * 2. **Send**, from the one node holding the outbox's lease (webhook-sender.ts): per receiver,
 *    in the outbox's order (so a channel's, and a user's, events in order), one request at a
 *    time, batched (events fired within `batchWaitMs` of each other go together), signed,
 *    retried with back-off.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Engine } from '../core/engine.js';
import type { Outbox } from '../core/outbox.js';
import type { ChannelTransition } from '../core/presence-events.js';
import type { Logger } from './logger.js';
import { WebhookSender } from './webhook-sender.js';
import type { WebhookCounters } from './webhook-sender.js';

export { backoff, MAX_BATCH_EVENTS, SIGNATURE_HEADER, webhookSignature } from './webhook-sender.js';
export type { WebhookCounters } from './webhook-sender.js';

export const WEBHOOK_EVENT_TYPES = ['channel.occupied', 'channel.vacated', 'user.online', 'user.offline', 'subscribe', 'unsubscribe', 'publish'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
/** What a receiver without a filter is sent; the others only to receivers whose filter names them. */
export const DEFAULT_WEBHOOK_EVENTS: readonly WebhookEventType[] = ['channel.occupied', 'channel.vacated', 'user.online', 'user.offline'];
/** Seen by every node following the channel: claimed as they are stored (see above). */
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

export interface WebhookOptions {
  readonly targets: readonly WebhookTarget[];
  /** The filter of the targets given as bare URLs; DEFAULT_WEBHOOK_EVENTS when unset. */
  readonly events: readonly WebhookEventType[] | undefined;
  readonly secret: string;
  readonly maxPending: number;
  readonly attempts: number;
  /** The first wait before a retry; each next one doubles, with jitter. */
  readonly retryMs: number;
  /** How long a receiver woken by an event waits before reading, gathering the events fired with it into one request. */
  readonly batchWaitMs: number;
  /** How long a claim on an event lasts: half the grace window. */
  readonly claimMs: number;
  /** How long the sending node's lease lasts unless renewed (default LEASE_MS). */
  readonly leaseMs?: number;
}

/** The sender's lease: a node that dies stops sending this long at most before another takes over. */
export const LEASE_MS = 3_000;
/** How often a receiver with nothing to send looks for events stored by other nodes. */
const POLL_MS = 250;

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
  readonly events: ReadonlySet<string>;
}

export class Webhooks {
  readonly #receivers: Receiver[];
  readonly #outbox: Outbox;
  readonly #sender: WebhookSender;
  #closed = false;

  constructor(
    engine: Engine,
    private readonly clock: Clock,
    private readonly options: WebhookOptions,
    private readonly logger: Logger,
    private readonly counters: WebhookCounters,
  ) {
    this.#receivers = options.targets.map((target) => {
      const { url, events = options.events ?? DEFAULT_WEBHOOK_EVENTS } = typeof target === 'string' ? { url: target } : target;
      return { url, events: new Set(events) };
    });
    this.#outbox = engine.outbox('webhooks', options.maxPending);
    const receivers = this.#receivers.map((receiver) => ({ url: receiver.url, wants: (type: string) => wants(receiver, type) }));
    this.#sender = new WebhookSender(this.#outbox, receivers, clock, { ...options, leaseMs: options.leaseMs ?? LEASE_MS, pollMs: POLL_MS }, logger, counters);
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
   * Stores an event for the receivers that want it: a channel event unless another node did. Returns at
   * once: nothing waits for the store or the send.
   */
  emit(fields: WebhookEventFields): void {
    if (this.#closed || !this.wants(fields.type)) return;
    this.#store({ id: randomUUID(), ...fields, at: fields.at ?? this.clock.now() });
  }

  /** Stops sending (the events stay in the outbox, for the next sender) and gives up the lease. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#sender.close();
  }

  /**
   * Adds the event to the outbox, a channel event claimed by its type and channel so that the
   * nodes that all saw it store it once. In order per channel: an add is one Redis round trip,
   * and the adds of one channel's transitions (a grace window apart) never overlap.
   */
  #store(event: WebhookEvent): void {
    const { type, channel, user } = event;
    const claim = CLAIMED_EVENTS.has(type) ? { key: `webhook:${type}:${channel}`, ttlMs: this.options.claimMs } : undefined;
    this.#outbox.add(JSON.stringify(event), claim).then(
      (added) => added && this.#sender.wake(),
      (error: unknown) => {
        // No node can tell whether another stored it: dropped here rather than sent twice.
        this.counters.dropped(1, 'engine');
        this.logger.warn('webhook events dropped', { type, channel, user, dropped: 1, reason: `the engine could not store it: ${(error as Error).message ?? String(error)}` });
      },
    );
  }
}

function wants(receiver: Receiver, type: string): boolean {
  return receiver.events.has(type);
}
