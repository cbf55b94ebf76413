/**
 * @module
 * The revocations a node knows, checked on every token use: by `jti`, and per subject the moment
 * before which its tokens were issued. Each is kept until its `until`, then forgotten. Two
 * revocations of the same token or subject merge into the wider one (the later `before`, the
 * later `until`), so the order in which nodes hear of them does not matter.
 */
import type { Principal } from './access.js';
import type { Revocation } from './control.js';

export class Revocations {
  /** jti → until (ms). */
  readonly #tokens = new Map<string, number>();
  /** sub → tokens issued before `before` (ms) are revoked until `until` (ms). */
  readonly #subjects = new Map<string, { before: number; until: number }>();

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
    const known = this.#subjects.get(revocation.sub);
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

  #forgetExpired(now: number): void {
    for (const [jti, until] of this.#tokens) if (until <= now) this.#tokens.delete(jti);
    for (const [sub, { until }] of this.#subjects) if (until <= now) this.#subjects.delete(sub);
  }
}
