/**
 * @module
 * The one way a message gets in: every front door (REST, Bayeux, the server-side API) publishes
 * through here, so a message the engine stores is always one every recipient can encode. Checks
 * come first — a broadcast channel name, data that serialises to JSON, within the size limit —
 * and only then does the engine assign an id, store and fan out. A publish with an idempotency key
 * takes effect at most once within the window (the engine keeps the key with the message); a batch
 * (batch.ts) is many publishes through here.
 */
import { parseChannel } from './channel.js';
import type { Engine } from './engine.js';
import { idempotencyKeyProblem } from './idempotency.js';
import type { Hub } from './hub.js';
import type { LimitCounters } from './limits.js';
import type { Message } from './message.js';
import { serialise } from './message.js';

/** Why a publish was refused before anything was stored. */
export type PublishRefusal =
  | { readonly reason: 'invalid_channel'; readonly channel: string }
  | { readonly reason: 'invalid_data' }
  | { readonly reason: 'too_large'; readonly size: number; readonly max: number }
  | { readonly reason: 'invalid_idempotency_key'; readonly problem: string }
  /** The key was used within its window for a publish to another channel: a key names one message. */
  | { readonly reason: 'idempotency_conflict'; readonly channel: string; readonly firstChannel: string };

export type PublishOutcome =
  | {
      readonly ok: true;
      readonly message: Message;
      /** Local sessions it was queued for during fan-out (0 for a duplicate). */
      readonly subscribers: number;
      /** The idempotency key was used already: nothing was stored, `message` has the first publish's id. */
      readonly duplicate: boolean;
    }
  | ({ readonly ok: false } & PublishRefusal);

export interface PublisherOptions {
  /** Largest message, as JSON bytes of its data. */
  readonly maxMessageBytes: number;
  /** How long an idempotency key keeps a retried publish from taking effect again. */
  readonly idempotencyWindowMs?: number;
  readonly counters?: LimitCounters;
}

/** Five minutes: longer than any backend's retries after a timeout. */
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 300_000;

export class Publisher {
  readonly #published: ((message: Message) => void)[] = [];

  constructor(
    private readonly engine: Engine,
    private readonly hub: Hub,
    private readonly options: PublisherOptions,
  ) {}

  /**
   * Checks, stores and fans out `data` on `channel`. Resolves with a refusal for bad input (the
   * engine saw nothing); rejects only when the engine fails (e.g. HERALD_ERR_ENGINE_UNAVAILABLE).
   */
  async publish(channel: string, data: unknown, idempotencyKey?: string): Promise<PublishOutcome> {
    const outcome = await this.#publish(channel, data, idempotencyKey);
    // A duplicate published nothing.
    if (outcome.ok && !outcome.duplicate) for (const listener of this.#published) listener(outcome.message);
    return outcome;
  }

  /** Tells `listener` of every message stored through this node (not duplicates), in the order the engine gave their ids per channel. Must not throw. */
  onPublished(listener: (message: Message) => void): void {
    this.#published.push(listener);
  }

  async #publish(channel: string, data: unknown, idempotencyKey?: string): Promise<PublishOutcome> {
    const checked = this.#measure(channel, data);
    if ('reason' in checked) return { ok: false, ...checked };
    // The data is serialised once, here: its size is the one the memory budget counts, and its
    // JSON what the engine stores (Redis) and every recipient's wire format carries.
    const { size, json } = checked;
    if (idempotencyKey === undefined) {
      const message = await this.engine.publish({ channel, data, size, json });
      return { ok: true, message, subscribers: this.hub.takeRecipientCount(message.id), duplicate: false };
    }
    const problem = idempotencyKeyProblem(idempotencyKey);
    if (problem !== undefined) return { ok: false, reason: 'invalid_idempotency_key', problem };
    const windowMs = this.options.idempotencyWindowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS;
    const message = await this.engine.publish({ channel, data, size, json, idempotency: { key: idempotencyKey, windowMs } });
    if (message.duplicate !== true) return { ok: true, message, subscribers: this.hub.takeRecipientCount(message.id), duplicate: false };
    if (message.channel !== channel) return { ok: false, reason: 'idempotency_conflict', channel, firstChannel: message.channel };
    return { ok: true, message, subscribers: 0, duplicate: true };
  }

  /** Why `data` cannot travel as a message (to any channel, service ones included), if it cannot. */
  checkData(data: unknown): PublishRefusal | undefined {
    const checked = this.#measureData(data);
    return 'reason' in checked ? checked : undefined;
  }

  /** The data as JSON and its size, or why it may not be published on `channel`. */
  #measure(channel: string, data: unknown): Measured | PublishRefusal {
    const parsed = parseChannel(channel);
    if (parsed === undefined || parsed.wildcard !== 'none' || parsed.kind !== 'broadcast') return { reason: 'invalid_channel', channel: String(channel) };
    return this.#measureData(data);
  }

  #measureData(data: unknown): Measured | PublishRefusal {
    const json = serialise(data);
    if (json === undefined) return { reason: 'invalid_data' };
    const size = Buffer.byteLength(json);
    if (size > this.options.maxMessageBytes) {
      this.options.counters?.hit('message_size');
      return { reason: 'too_large', size, max: this.options.maxMessageBytes };
    }
    return { size, json };
  }
}

/** Data that may be published: its JSON, and that JSON's bytes. */
interface Measured {
  readonly size: number;
  readonly json: string;
}

/** A refusal in words, for front doors that answer with text (REST, the API's errors). */
export function describeRefusal(refusal: PublishRefusal): string {
  switch (refusal.reason) {
    case 'invalid_channel':
      return `cannot publish to ${JSON.stringify(refusal.channel.slice(0, 200))}: not a broadcast channel name`;
    case 'invalid_data':
      return 'the data cannot be serialised as JSON (undefined, a BigInt, a cycle, or nested too deeply)';
    case 'too_large':
      return `message too large: ${refusal.size} bytes as JSON, at most ${refusal.max}`;
    case 'invalid_idempotency_key':
      return refusal.problem;
    case 'idempotency_conflict':
      return `the idempotency key was used for a publish to ${JSON.stringify(refusal.firstChannel.slice(0, 200))}, not ${JSON.stringify(refusal.channel.slice(0, 200))}: a key names one message`;
  }
}
