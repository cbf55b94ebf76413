/**
 * @module
 * Batch publish: many messages in one request (`POST /pub`, `herald.publishBatch()`). Each item is
 * published through the Publisher like any single message, so it is checked, stored and counted
 * alike; an item that cannot be published is answered with its own status and error, and the
 * others go ahead. Items on one channel are published one after another, in the batch's order;
 * channels proceed side by side. When the engine fails on an item, the items after it on the same
 * channel are not tried (each says so): a retry of them, in order, keeps the channel's order.
 */
import type { Reading } from './control.js';
import { isEngineUnavailable } from './errors.js';
import type { PublishRefusal, Publisher } from './publisher.js';
import { describeRefusal } from './publisher.js';

export interface BatchItem {
  readonly channel: string;
  readonly data: unknown;
  /** A retry of the batch with the same key publishes this item at most once (idempotency.ts). */
  readonly idempotencyKey?: string;
}

/** Why an item was not published: an HTTP-like status (400, 403, 409, 413, 429, 503) and words naming the problem. */
export interface BatchItemRefusal {
  readonly status: number;
  readonly error: string;
}

export type BatchResult =
  | { readonly status: 200; readonly channel: string; readonly id: string; readonly subscribers: number; readonly duplicate?: true }
  | (BatchItemRefusal & { readonly channel?: string });

/** Decides, before it is published, whether the sender may publish the item (the REST gate, a rate); undefined = yes. */
/** Whether an item may be published: a refusal, `{data}` to publish in place of its own (a hook replaced it), or undefined. */
export type BatchAdmission = (item: BatchItem) => Promise<Admitted> | Admitted;
type Admitted = BatchItemRefusal | { readonly data: unknown } | undefined;

/** Each publish refusal's status, as REST answers it. */
export const REFUSAL_STATUS: Record<PublishRefusal['reason'], number> = {
  invalid_channel: 400,
  invalid_data: 400,
  too_large: 413,
  invalid_idempotency_key: 400,
  idempotency_conflict: 409,
};

const EXAMPLE = '[{"channel": "/chat/1", "data": {"text": "hi"}, "idempotencyKey": "a-uuid"}, …]';
const FIELDS = ['channel', 'data', 'idempotencyKey'];

/** The batch as a whole: a JSON array of 1 to `max` items (what each holds is read item by item). */
export function readBatch(input: unknown, max: number): Reading<readonly unknown[]> & { tooMany?: true } {
  if (!Array.isArray(input)) return { ok: false, error: `send a JSON array of messages, such as ${EXAMPLE}` };
  if (input.length === 0) return { ok: false, error: 'the batch is empty: send at least one message' };
  if (input.length > max) return { ok: false, error: `too many messages in one batch: ${input.length}, at most ${max} (--max-batch)`, tooMany: true };
  return { ok: true, value: input };
}

/** One item of a batch → what to publish, or why it cannot be. */
export function readBatchItem(input: unknown): BatchItem | (BatchItemRefusal & { channel?: string }) {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return { status: 400, error: `each message must be an object such as ${EXAMPLE.slice(1, -4)}` };
  const record = input as Record<string, unknown>;
  const channel = typeof record.channel === 'string' ? record.channel.slice(0, 200) : undefined;
  const unknown = Object.keys(record).find((key) => !FIELDS.includes(key));
  if (unknown !== undefined) return { status: 400, channel, error: `${JSON.stringify(unknown.slice(0, 60))} is not a field: use channel, data, idempotencyKey` };
  if (typeof record.channel !== 'string') return { status: 400, error: 'channel is required: a channel name such as /chat/1' };
  // null is data like any other; only a missing field is a mistake.
  if (!('data' in record)) return { status: 400, channel, error: 'data is required (any JSON value)' };
  if (record.idempotencyKey !== undefined && typeof record.idempotencyKey !== 'string') return { status: 400, channel, error: 'idempotencyKey must be a string' };
  return { channel: record.channel, data: record.data, idempotencyKey: record.idempotencyKey as string | undefined };
}

/**
 * Publishes every item of a batch read by readBatch, each through `publisher`, and answers one
 * result per item in the batch's order. Rejects only on a failure that is not the engine's (a bug).
 */
export async function publishBatch(publisher: Publisher, items: readonly unknown[], admit?: BatchAdmission): Promise<BatchResult[]> {
  const results: BatchResult[] = new Array(items.length);
  const byChannel = new Map<string, { index: number; item: BatchItem }[]>();
  items.forEach((input, index) => {
    const item = readBatchItem(input);
    if ('status' in item) {
      results[index] = item;
      return;
    }
    let group = byChannel.get(item.channel);
    if (group === undefined) byChannel.set(item.channel, (group = []));
    group.push({ index, item });
  });
  await Promise.all([...byChannel.values()].map((group) => publishInOrder(publisher, group, results, admit)));
  return results;
}

async function publishInOrder(publisher: Publisher, group: readonly { index: number; item: BatchItem }[], results: BatchResult[], admit: BatchAdmission | undefined): Promise<void> {
  let failed: string | undefined;
  for (const { index, item } of group) {
    const channel = item.channel.slice(0, 200);
    if (failed !== undefined) {
      results[index] = { status: 503, channel, error: `not published: an earlier message to this channel in the batch could not be (${failed}); send them again, in order` };
      continue;
    }
    const admitted = await admit?.(item);
    if (admitted !== undefined && 'status' in admitted) {
      results[index] = { status: admitted.status, channel, error: admitted.error };
      continue;
    }
    try {
      const outcome = await publisher.publish(item.channel, admitted === undefined ? item.data : admitted.data, item.idempotencyKey);
      if (!outcome.ok) results[index] = { status: REFUSAL_STATUS[outcome.reason], channel, error: describeRefusal(outcome) };
      else if (outcome.duplicate) results[index] = { status: 200, channel: item.channel, id: outcome.message.id, subscribers: 0, duplicate: true };
      else results[index] = { status: 200, channel: item.channel, id: outcome.message.id, subscribers: outcome.subscribers };
    } catch (error) {
      if (!isEngineUnavailable(error)) throw error;
      failed = 'engine unavailable';
      results[index] = { status: 503, channel, error: `engine unavailable: ${error.message}` };
    }
  }
}

/**
 * The status of the whole answer: 200 when any item was published (or was a duplicate of one that
 * was); when none was, the status every item shares (all refused alike, e.g. 401 or 503), else 400.
 */
export function batchStatus(results: readonly BatchResult[]): number {
  if (results.some((result) => result.status === 200)) return 200;
  const first = results[0]?.status ?? 400;
  return results.every((result) => result.status === first) ? first : 400;
}
