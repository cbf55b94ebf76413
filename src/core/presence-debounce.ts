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
  /** Set when the baseline read failed: members of the first snapshot that joined at or after it are new. */
  #newSince: number | undefined;

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
   * The read that was to be the baseline failed (the engine was not ready) at a time `since`
   * when no member had yet been told: the first snapshot that does come in cannot be taken whole
   * as "there already" — a member that joined in between would never join. Its members that
   * joined at or after `since` (their first session's `joinedAt`) join; the others were there
   * already and join silently, so that no storm follows. Exact for this node's sessions; for other
   * nodes' members, up to the skew between the nodes' clocks. The earliest failure counts.
   */
  missedBaseline(since: number): void {
    if (!this.#started && this.#newSince === undefined) this.#newSince = since;
  }

  /**
   * Who is subscribed now, everywhere. The first snapshot is the baseline: its members were there
   * already, and join silently (but see missedBaseline). Returns the joins (and `occupied`);
   * leaves come from due().
   */
  observe(snapshot: readonly PresenceMember[], now: number): MemberTransition[] {
    const baseline = !this.#started;
    this.#started = true;
    const newSince = this.#newSince;
    this.#newSince = undefined;
    const thereAlready = (member: PresenceMember) => baseline && (newSince === undefined || member.joinedAt < newSince);
    const transitions: MemberTransition[] = [];
    const seen = new Set<string>();
    // Those there already first: a channel they were in was not occupied by a newcomer.
    const ordered = baseline ? [...snapshot.filter(thereAlready), ...snapshot.filter((member) => !thereAlready(member))] : snapshot;
    for (const member of ordered) {
      const key = memberKey(member);
      seen.add(key);
      const tracked = this.#members.get(key);
      if (tracked !== undefined) {
        // Back within the grace window, or still here: its latest connections and info count.
        tracked.member = member;
        tracked.leavingSince = undefined;
        continue;
      }
      const joins = !thereAlready(member);
      if (joins && this.#members.size === 0) transitions.push({ kind: 'occupied' });
      this.#members.set(key, { member, leavingSince: undefined });
      if (joins) transitions.push({ kind: 'join', member });
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
