/**
 * @module
 * Channels in REST paths (`/pub/chat/room1` → `/chat/room1`) and the JSON shape of a message on the
 * plain-HTTP API.
 */
import { MAX_CHANNEL_LENGTH, parseChannel } from '../core/channel.js';
import type { ParsedChannel } from '../core/channel.js';
import { dataJson } from '../core/message.js';
import type { Message, WireFormat } from '../core/message.js';

export type ChannelResult = { channel: ParsedChannel } | { status: 400 | 403; error: string };

/**
 * The channel named by what follows a route prefix. `patterns` allows `*` and `**` (subscribing);
 * meta and service channels belong to Bayeux and are refused.
 */
export function channelFromPath(rest: string, patterns: boolean): ChannelResult {
  let name: string;
  try {
    name = '/' + decodeURIComponent(rest);
  } catch {
    return { status: 400, error: 'malformed percent-encoding in the channel' };
  }
  const channel = parseChannel(name);
  if (channel === undefined && name.length > MAX_CHANNEL_LENGTH) return { status: 400, error: `channel names are at most ${MAX_CHANNEL_LENGTH} characters, this one has ${name.length}` };
  if (channel === undefined) return { status: 400, error: `invalid channel ${JSON.stringify(name.slice(0, 200))}` };
  if (channel.kind !== 'broadcast') return { status: 403, error: `${channel.kind} channels are not open to the REST API` };
  if (!patterns && channel.wildcard !== 'none') return { status: 400, error: `${name} is a pattern: name one channel` };
  return { channel };
}

/** The `?limit=` of a listing: the number, or an error naming the range it must be in. */
export function readLimit(query: URLSearchParams, fallback: number, min: number, max: number): number | { error: string } {
  const text = query.get('limit');
  const limit = text === null ? fallback : Number(text);
  return Number.isInteger(limit) && limit >= min && limit <= max ? limit : { error: `limit must be an integer from ${min} to ${max}` };
}

/**
 * `{"id":…,"channel":…,"data":…}`: what every REST transport sends for one message; a presence
 * event is `{"event":"join"|"leave"|"count","channel":…,"data":…}`, without an id.
 */
export const REST_JSON: WireFormat = {
  encode: (message: Message, json?: string) =>
    message.event === undefined
      ? `{"id":${JSON.stringify(message.id)},"channel":${JSON.stringify(message.channel)},"data":${dataJson(message, json)}}`
      : `{"event":"${message.event}","channel":${JSON.stringify(message.channel)},"data":${dataJson(message, json)}}`,
};
