/**
 * @module
 * Channel names and patterns as sets of channels, for reasoning about access: whether one covers
 * another (every channel of the one is in the other) and what two have in common. A pattern's
 * wildcard is only ever its last segment, so each set is a literal prefix and a range of depths
 * (`/a/*`: prefix `a`, 2 segments; `/a/**`: prefix `a`, 2 or more), and what two sets have in
 * common is again such a set, or nothing.
 *
 * Segment names are unbounded, so a set with a wildcard is covered by several patterns together
 * only if one of them covers it alone: access can reason rule by rule (access.ts).
 */
import { parseChannel } from './channel.js';

export interface ChannelSet {
  /** The literal segments every channel of the set starts with. */
  readonly prefix: readonly string[];
  /** How many segments its channels have: from `minDepth` to `maxDepth` (Infinity for `**`). */
  readonly minDepth: number;
  readonly maxDepth: number;
}

/** The set a channel name (one channel) or pattern stands for; undefined when it breaks the grammar. */
export function channelSet(name: unknown): ChannelSet | undefined {
  const parsed = parseChannel(name);
  if (parsed === undefined) return undefined;
  const segments = parsed.name.slice(1).split('/');
  if (parsed.wildcard === 'none') return { prefix: segments, minDepth: segments.length, maxDepth: segments.length };
  segments.pop();
  const minDepth = segments.length + 1;
  return { prefix: segments, minDepth, maxDepth: parsed.wildcard === 'one' ? minDepth : Infinity };
}

/** Whether every channel of `inner` is in `outer`. */
export function includes(outer: ChannelSet, inner: ChannelSet): boolean {
  // A shorter literal prefix leaves a segment free where `outer` names one.
  if (inner.prefix.length < outer.prefix.length || inner.minDepth < outer.minDepth || inner.maxDepth > outer.maxDepth) return false;
  for (let i = 0; i < outer.prefix.length; i++) if (outer.prefix[i] !== inner.prefix[i]) return false;
  return true;
}

/** The channels in both sets, or undefined when they have none in common. */
export function intersection(a: ChannelSet, b: ChannelSet): ChannelSet | undefined {
  const minDepth = Math.max(a.minDepth, b.minDepth);
  const maxDepth = Math.min(a.maxDepth, b.maxDepth);
  if (minDepth > maxDepth) return undefined;
  const [longer, shorter] = a.prefix.length >= b.prefix.length ? [a, b] : [b, a];
  for (let i = 0; i < shorter.prefix.length; i++) if (shorter.prefix[i] !== longer.prefix[i]) return undefined;
  if (longer.minDepth === minDepth && longer.maxDepth === maxDepth) return longer;
  return { prefix: longer.prefix, minDepth, maxDepth };
}
