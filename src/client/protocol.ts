/**
 * @module
 * What the client sends and receives: Bayeux messages as plain JSON, and the names of the
 * connection types it can use, best first.
 */

export interface Message {
  channel: string;
  id?: string;
  clientId?: string;
  successful?: boolean;
  error?: string;
  data?: unknown;
  advice?: Advice;
  ext?: Record<string, any>;
  [field: string]: unknown;
}

export interface Advice {
  reconnect?: 'retry' | 'handshake' | 'none';
  interval?: number;
  timeout?: number;
  /** How long after `interval` the server keeps a session that sends no connect (CometD's `maxInterval`). */
  maxInterval?: number;
  'multiple-clients'?: boolean;
}

/**
 * The longest interval or timeout a server's advice may set: past 2^31 ms a timer fires at once,
 * so a larger value (or one that is not a number: `"30000"` would be concatenated, not added)
 * would make the client connect in a hot loop or give up on every held connect.
 */
export const MAX_ADVICE_MS = 24 * 60 * 60 * 1000;

/**
 * `current` updated with what the server advised, taking only what is well-formed: a known
 * `reconnect`, and an `interval` or `timeout` that is a number of milliseconds (at most
 * MAX_ADVICE_MS). Anything else a server (or a proxy) sends is ignored.
 */
export function mergeAdvice(current: Advice, advised: unknown): Advice {
  if (typeof advised !== 'object' || advised === null) return current;
  const { reconnect, interval, timeout, maxInterval } = advised as Record<string, unknown>;
  const next: Advice = { ...current };
  if (reconnect === 'retry' || reconnect === 'handshake' || reconnect === 'none') next.reconnect = reconnect;
  if (isDuration(interval)) next.interval = Math.min(interval, MAX_ADVICE_MS);
  if (isDuration(timeout)) next.timeout = Math.min(timeout, MAX_ADVICE_MS);
  if (isDuration(maxInterval)) next.maxInterval = Math.min(maxInterval, MAX_ADVICE_MS);
  if (typeof (advised as Advice)['multiple-clients'] === 'boolean') next['multiple-clients'] = (advised as Advice)['multiple-clients'];
  return next;
}

function isDuration(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** Every connection type the client speaks, best first: the order it tries them in. */
export const CONNECTION_TYPES = ['websocket', 'eventsource', 'long-polling', 'callback-polling'] as const;
export type ConnectionType = (typeof CONNECTION_TYPES)[number];

/** The id Herald gives a delivery, when the session asked for ids (handshake `ext.herald.ids`). */
export function messageIdOf(message: Message): string | undefined {
  const id = message.ext?.herald?.id;
  return typeof id === 'string' ? id : undefined;
}

/** Which presence event a delivery is (`ext.herald.presence`), when it is one rather than a message. */
export type PresenceEvent = 'join' | 'leave' | 'count';

export function presenceEventOf(message: Message): PresenceEvent | undefined {
  const event = message.ext?.herald?.presence;
  return event === 'join' || event === 'leave' || event === 'count' ? event : undefined;
}

/** A message that carries data to a subscriber (as opposed to a reply to one of ours). */
export function isDelivery(message: Message): boolean {
  return message.data !== undefined && !message.channel.startsWith('/meta/') && message.successful === undefined;
}

/** The server put this session on a channel, or took it off (a server-side subscription). */
export interface ServerSubscriptionNotice {
  readonly channel: string;
  readonly subscribed: boolean;
  /** Presented when subscribing again on a later session: the server's leave to. */
  readonly grant: string | undefined;
  /** Where the channel stood when the server subscribed the session: a later session resumes after it. */
  readonly last: string | undefined;
}

/** A server subscription's notice (`/meta/subscribe|unsubscribe` with `ext.herald.server`), or undefined. */
export function serverSubscriptionOf(message: Message): ServerSubscriptionNotice | undefined {
  const herald = message.ext?.herald;
  if (herald?.server !== true || message.successful !== true || typeof message.subscription !== 'string') return undefined;
  if (message.channel !== '/meta/subscribe' && message.channel !== '/meta/unsubscribe') return undefined;
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  return { channel: message.subscription, subscribed: message.channel === '/meta/subscribe', grant: text(herald.grant), last: text(herald.last) };
}
