/**
 * @module
 * The revocations a node knows, checked on every token use: by `jti`, and per subject the moment
 * before which its tokens were issued. Each is kept until its `until`, then forgotten. Two
 * revocations of the same token or subject merge into the wider one (the later `before`, the
 * later `until`), so the order in which nodes hear of them does not matter.
 */
import type { Principal } from './access.js';
import type { Revocation } from './control.js';

/** Below this many records, expired ones are never swept: they cost nothing. */
const MIN_SWEEP_SIZE = 1024;

export class Revocations {
  /** jti → until (ms). */
  readonly #tokens = new Map<string, number>();
  /** sub → tokens issued before `before` (ms) are revoked until `until` (ms). */
  readonly #subjects = new Map<string, { before: number; until: number }>();
  /** The size that makes the next add sweep out expired records: twice what the last sweep left. */
  #sweepAt = MIN_SWEEP_SIZE;

  get size(): number {
    return this.#tokens.size + this.#subjects.size;
  }

  /** Records `revocation`, merged with what is known of the same token or subject; returns the merged one. */
  add(revocation: Revocation, now: number): Revocation {
    this.#forgetExpired(now);
    if (revocation.kind === 'jti') {
      const until = Math.max(revocation.until, this.#tokens.get(revocation.jti) ?? 0);
      this.#tokens.set(revocation.jti, until);
      return { ...revocation, until };
    }
    // An expired record not swept yet is as good as gone: merging its `before` would revoke more than asked.
    const kept = this.#subjects.get(revocation.sub);
    const known = kept !== undefined && kept.until > now ? kept : undefined;
    const merged = { before: Math.max(revocation.before, known?.before ?? 0), until: Math.max(revocation.until, known?.until ?? 0) };
    this.#subjects.set(revocation.sub, merged);
    return { ...revocation, ...merged };
  }

  /** Whether a token with these claims is revoked at `now`. */
  revokes(principal: Principal, now: number): boolean {
    if (this.#tokens.size === 0 && this.#subjects.size === 0) return false;
    const { jti, iat } = principal.claims;
    if (typeof jti === 'string') {
      const until = this.#tokens.get(jti);
      if (until !== undefined && until > now) return true;
    }
    if (principal.subject === undefined) return false;
    const subject = this.#subjects.get(principal.subject);
    if (subject === undefined || subject.until <= now) return false;
    // A token that does not say when it was issued cannot show it came after.
    return typeof iat !== 'number' || iat * 1000 < subject.before;
  }

  /**
   * Sweeps expired records out once the store has doubled since the last sweep: a sweep walks
   * every record, so one on every add made 100,000 revocations (an operator's script after a
   * leak, or a node reading them back from Redis) cost 10^10 steps. Expired records left until
   * then are never obeyed (revokes() checks `until`), and at most as many as live ones.
   */
  #forgetExpired(now: number): void {
    if (this.size < this.#sweepAt) return;
    for (const [jti, until] of this.#tokens) if (until <= now) this.#tokens.delete(jti);
    for (const [sub, { until }] of this.#subjects) if (until <= now) this.#subjects.delete(sub);
    this.#sweepAt = Math.max(MIN_SWEEP_SIZE, 2 * this.size);
  }
}
