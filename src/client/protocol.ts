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
  'multiple-clients'?: boolean;
}

/** Every connection type the client speaks, best first: the order it tries them in. */
export const CONNECTION_TYPES = ['websocket', 'eventsource', 'long-polling', 'callback-polling'] as const;
export type ConnectionType = (typeof CONNECTION_TYPES)[number];

/** The id Herald gives a delivery, when the session asked for ids (handshake `ext.herald.ids`). */
export function messageIdOf(message: Message): string | undefined {
  const id = message.ext?.herald?.id;
  return typeof id === 'string' ? id : undefined;
}

/** A message that carries data to a subscriber (as opposed to a reply to one of ours). */
export function isDelivery(message: Message): boolean {
  return message.data !== undefined && !message.channel.startsWith('/meta/') && message.successful === undefined;
}
