/**
 * @module
 * The debouncing state machine of one channel's members: fed snapshots of who is subscribed (on
 * every node), it says who joined and who left — a member that vanishes from the snapshots leaves
 * only once it has been absent for the whole grace window. A long-poll client between two
 * connects, a reconnect, a move to another node or a tab handing over to another is back before
 * then, and nothing is said. Pure: time is passed in, so tests drive it with any clock.
 *
 * States per member: absent → (seen) present → (unseen) leaving → (seen again) present, or
 * (grace passed) absent. Transitions out: `join` absent→present, `leave` leaving→absent;
 * `occupied` when the first member joins an empty channel, `vacated` when the last one leaves.
 */
import { memberKey } from './presence.js';
import type { PresenceMember } from './presence.js';

export type MemberTransition =
  | { readonly kind: 'join' | 'leave'; readonly member: PresenceMember }
  | { readonly kind: 'occupied' | 'vacated' };

interface Tracked {
  member: PresenceMember;
  /** When it went unseen; undefined while present. */
  leavingSince: number | undefined;
}

export class MemberDebouncer {
  readonly #members = new Map<string, Tracked>();
  #started = false;

  constructor(private readonly graceMs: number) {}

  /** Members known, present or leaving. */
  get size(): number {
    return this.#members.size;
  }

  /** The members known, present or in their grace window. */
  members(): PresenceMember[] {
    return [...this.#members.values()].map((tracked) => tracked.member);
  }

  /** Whether `user` is known (present or leaving). */
  has(member: { readonly user: string; readonly anonymous?: true }): boolean {
    return this.#members.has(memberKey(member));
  }

  /**
   * Who is subscribed now, everywhere. The first snapshot is the baseline: its members were there
   * already, and join silently. Returns the joins (and `occupied`); leaves come from due().
   */
  observe(snapshot: readonly PresenceMember[], now: number): MemberTransition[] {
    const baseline = !this.#started;
    this.#started = true;
    const transitions: MemberTransition[] = [];
    const seen = new Set<string>();
    for (const member of snapshot) {
      const key = memberKey(member);
      seen.add(key);
      const tracked = this.#members.get(key);
      if (tracked !== undefined) {
        // Back within the grace window, or still here: its latest connections and info count.
        tracked.member = member;
        tracked.leavingSince = undefined;
        continue;
      }
      if (!baseline && this.#members.size === 0) transitions.push({ kind: 'occupied' });
      this.#members.set(key, { member, leavingSince: undefined });
      if (!baseline) transitions.push({ kind: 'join', member });
    }
    for (const [key, tracked] of this.#members) {
      if (!seen.has(key) && tracked.leavingSince === undefined) tracked.leavingSince = now;
    }
    return transitions;
  }

  /** The members whose grace window has passed by `now`: they leave (and the channel is vacated after the last). */
  due(now: number): MemberTransition[] {
    const transitions: MemberTransition[] = [];
    for (const [key, tracked] of this.#members) {
      if (tracked.leavingSince === undefined || now - tracked.leavingSince < this.graceMs) continue;
      this.#members.delete(key);
      transitions.push({ kind: 'leave', member: tracked.member });
    }
    if (transitions.length > 0 && this.#members.size === 0) transitions.push({ kind: 'vacated' });
    return transitions;
  }

  /** When the next leave falls due, if any member is leaving. */
  nextDue(): number | undefined {
    let next: number | undefined;
    for (const tracked of this.#members.values()) {
      if (tracked.leavingSince !== undefined) next = Math.min(next ?? Infinity, tracked.leavingSince + this.graceMs);
    }
    return next;
  }
}
