/**
 * @module
 * Bayeux channel names and patterns (Bayeux 1.0 §"Channels"):
 *
 *   channel_name    = "/" segment *( "/" segment )
 *   channel_pattern = *( "/" segment ) "/" ( "*" / "**" )
 *   segment         = 1*( ALPHA / DIGIT / "-" / "_" / "!" / "~" / "(" / ")" / "$" / "@" )
 *
 * `/a/*` matches exactly one more segment, `/a/**` one or more; `/**` matches every channel.
 * This module is browser-safe: the client library imports it too.
 */

const SEGMENT = /^[A-Za-z0-9\-_!~()$@]+$/;

/** The longest channel name or pattern. */
export const MAX_CHANNEL_LENGTH = 1024;

export const META_PREFIX = '/meta/';
export const SERVICE_PREFIX = '/service/';

export type ChannelKind = 'meta' | 'service' | 'broadcast';
export type Wildcard = 'none' | 'one' | 'deep';

export interface ParsedChannel {
  readonly name: string;
  readonly kind: ChannelKind;
  readonly wildcard: Wildcard;
}

/**
 * The last name parsed and what it parsed to: a publish parses its channel at the door and again
 * in the publisher, and bursts publish on one channel.
 */
let lastParsed: ParsedChannel | undefined;

/** Parses a name or pattern; `undefined` when it breaks the grammar. */
export function parseChannel(name: unknown): ParsedChannel | undefined {
  if (lastParsed !== undefined && lastParsed.name === name) return lastParsed;
  if (typeof name !== 'string' || name.length < 2 || name.length > MAX_CHANNEL_LENGTH || name[0] !== '/') return undefined;
  const segments = name.slice(1).split('/');
  const last = segments[segments.length - 1];
  let wildcard: Wildcard = 'none';
  if (last === '*') wildcard = 'one';
  else if (last === '**') wildcard = 'deep';
  const plainCount = wildcard === 'none' ? segments.length : segments.length - 1;
  for (let i = 0; i < plainCount; i++) {
    if (!SEGMENT.test(segments[i]!)) return undefined;
  }
  return (lastParsed = Object.freeze({ name, kind: kindOf(name, segments[0]!), wildcard }));
}

function kindOf(name: string, first: string): ChannelKind {
  // `/meta` and `/service` alone are reserved too, not broadcast channels.
  if (first === 'meta' || name.startsWith(META_PREFIX)) return 'meta';
  if (first === 'service' || name.startsWith(SERVICE_PREFIX)) return 'service';
  return 'broadcast';
}

/** True for a concrete (non-wildcard) valid channel name. */
export function isChannelName(name: unknown): name is string {
  const parsed = parseChannel(name);
  return parsed !== undefined && parsed.wildcard === 'none';
}

/**
 * The patterns whose subscribers receive a message published on `name`, most specific first:
 * `/a/b/c` → `/a/b/c`, `/a/b/*`, `/a/b/**`, `/a/**`, `/**`. The caller passes a valid concrete name.
 */
export function expandChannel(name: string): string[] {
  const out = [name];
  let end = name.lastIndexOf('/');
  out.push(name.slice(0, end + 1) + '*');
  for (;;) {
    out.push(name.slice(0, end + 1) + '**');
    if (end === 0) return out;
    end = name.lastIndexOf('/', end - 1);
  }
}
