/**
 * @module
 * Which Redis pub/sub subscription carries a Herald channel or pattern (redis-subscriptions.ts).
 */

/**
 * The Redis subscription that brings a pattern's messages: the channel itself, or a glob over its
 * prefix (`/a/*` and `/a/**` both → `…/a/*`, which also matches deeper channels; the engine keeps
 * only those its patterns match). The prefix is matched literally: glob characters in it (a key
 * prefix such as `app[1]:`, a name the doors did not check) are escaped, or the glob would bring
 * other key spaces' traffic too.
 */
export function redisTarget(pattern: string, prefix: string): { name: string; glob: boolean } {
  if (!pattern.endsWith('*')) return { name: prefix + pattern, glob: false };
  const literal = prefix + pattern.slice(0, pattern.lastIndexOf('/') + 1);
  return { name: literal.replace(/[*?[\]\\]/g, '\\$&') + '*', glob: true };
}
