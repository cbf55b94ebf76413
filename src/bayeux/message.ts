/**
 * @module
 * Bayeux message shapes and the JSON wire format of deliveries and reply bodies.
 */
import { dataJson } from '../core/message.js';
import type { Delivery, Message, WireFormat } from '../core/message.js';

/** A message as received: any JSON object; every field is checked before use. */
export interface BayeuxMessage {
  [field: string]: unknown;
}

export type ReconnectAdvice = 'retry' | 'handshake' | 'none';

export interface Advice {
  reconnect: ReconnectAdvice;
  interval?: number;
  timeout?: number;
  maxInterval?: number;
  'multiple-clients'?: boolean;
}

/** A reply we send: always names its channel, echoes the request `id` when there was one. */
export interface BayeuxReply extends BayeuxMessage {
  channel: string;
  successful?: boolean;
  id?: string | number;
  error?: string;
  advice?: Advice;
}

/**
 * A delivery carries only the concrete channel and the data: the publisher's `id` would collide
 * with the recipient's own pending request ids (CometD matches remote-call replies by `id`), and
 * its `ext` may hold credentials.
 */
export const BAYEUX_JSON: WireFormat = {
  encode: (message: Message, json?: string) => noticeJson(message) ?? eventJson(message, json) ?? `{"channel":${JSON.stringify(message.channel)},"data":${dataJson(message, json)}}`,
};

/** The same with Herald's message id in `ext.herald.id`, for sessions that resume (ext/resume.ts). */
export const BAYEUX_JSON_WITH_ID: WireFormat = {
  encode: (message: Message, json?: string) =>
    noticeJson(message) ??
    eventJson(message, json) ??
    `{"channel":${JSON.stringify(message.channel)},"data":${dataJson(message, json)},"ext":{"herald":{"id":${JSON.stringify(message.id)}}}}`,
};

/**
 * A presence event rides on its channel like a message, marked in `ext.herald.presence` (the
 * CometD client hands listeners the whole message, ext included; Faye's hands them `data` only,
 * so an incoming extension reads the marker there). No message id: it resumes nothing. Only the
 * server writes this ext: a client's publish never carries its ext to subscribers.
 */
function eventJson(message: Message, json: string | undefined): string | undefined {
  if (message.event === undefined) return undefined;
  return `{"channel":${JSON.stringify(message.channel)},"data":${dataJson(message, json)},"ext":{"herald":{"presence":"${message.event}"}}}`;
}

/**
 * A notice from the server (token-subscriptions.ts) travels in the delivery queue to keep its place
 * among the messages: a Message on a /meta channel — where nothing can be published — whose data
 * holds the rest of the meta message.
 */
function noticeJson(message: Message): string | undefined {
  return message.channel.startsWith('/meta/') ? JSON.stringify({ channel: message.channel, ...(message.data as object) }) : undefined;
}

/** A reply body: a JSON array, replies first, then queued deliveries in order. */
export function encodeBody(replies: readonly BayeuxMessage[], deliveries: readonly Delivery[], format: WireFormat = BAYEUX_JSON): string {
  const parts: string[] = [];
  for (const reply of replies) parts.push(JSON.stringify(reply));
  for (const delivery of deliveries) parts.push(delivery.encode(format));
  return `[${parts.join(',')}]`;
}

/** The delivery format a session asked for. */
export function formatFor(session: { messageIds: boolean } | undefined): WireFormat {
  return session?.messageIds === true ? BAYEUX_JSON_WITH_ID : BAYEUX_JSON;
}

/** Client input as text for an error message, without calling anything the client controls. */
export function describe(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : typeof value;
}

export function isObject(value: unknown): value is BayeuxMessage {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The request's `id` if it is one we may echo (the grammar wants alphanumerics; clients send strings or numbers). */
export function echoId(message: BayeuxMessage): string | number | undefined {
  const { id } = message;
  if (typeof id === 'string' && id.length <= 128) return id;
  if (typeof id === 'number' && Number.isFinite(id)) return id;
  return undefined;
}

/** The start of every reply to `message`. */
export function replyTo(channel: string, message: BayeuxMessage): BayeuxReply {
  const reply: BayeuxReply = { channel };
  const id = echoId(message);
  if (id !== undefined) reply.id = id;
  return reply;
}
