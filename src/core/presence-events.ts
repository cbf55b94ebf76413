/**
 * @module
 * Join and leave events: the one place member changes are found, debounced and told — to the
 * channel's subscribers on this node (queued like messages, never stored), and to whoever listens
 * in code (`herald.on('join' | 'leave')`, and later webhooks, which also get `occupied`/`vacated`).
 *
 * A node follows a channel that opted in (access rules, `"presence": "events"`) while it has
 * subscribers to it, or members of its own, or members in their grace window. It reads the
 * channel's presence (every node's sessions) whenever the engine says it changed — coalesced, one
 * read at a time — and every `sweepMs`, which is how a node that died without a word is noticed
 * (its entries lapse). The first read is the baseline: those members were there already. When
 * that read fails (the engine not ready yet), the next one that succeeds is the baseline only for
 * members that joined before this node began following: later ones join (MemberDebouncer.missedBaseline).
 *
 * Above `maxMembers`, a channel is crowded: its subscribers get a `count` event (users and
 * connections) every `sweepMs` when it changed instead of joins and leaves, and it is read only
 * then — a crowd's comings and goings cost one read per sweep, not one per change.
 */
import type { Clock, Timer } from './clock.js';
import type { Engine } from './engine.js';
import type { Hub } from './hub.js';
import { presenceEventMessage } from './message.js';
import { memberKey, membersOf } from './presence.js';
import type { PresenceMember } from './presence.js';
import { MemberDebouncer } from './presence-debounce.js';
import type { MemberTransition } from './presence-debounce.js';
import type { Session } from './session.js';

export interface PresenceEventsOptions {
  /** How long a member must stay away before it leaves. */
  readonly graceMs: number;
  /** Above this many members, a channel's subscribers get counts instead of joins and leaves. */
  readonly maxMembers: number;
  /** How often each followed channel is read again (dead nodes, counts of crowded channels). */
  readonly sweepMs: number;
  /** Whether `channel` opted in to join/leave events. */
  readonly eventsFor: (channel: string) => boolean;
}

/** A member change on a channel, as this node saw it. */
export type ChannelTransition = MemberTransition & { readonly channel: string };

/** What the subscribers are told of a member: who, what it shows, how many connections (none once it left). */
function shown(member: PresenceMember, left: boolean): unknown {
  const { user, anonymous, info, connections } = member;
  return { user, ...(anonymous ? { anonymous } : {}), ...(info === undefined ? {} : { info }), ...(left ? {} : { connections }) };
}

/** The member key a session counts under (presence.ts memberKey). */
export function sessionMemberKey(session: Session): string {
  const subject = session.principal?.subject;
  return subject === undefined || subject === '' ? `s:${session.publicId}` : `u:${subject}`;
}

interface Followed {
  readonly debouncer: MemberDebouncer;
  /** When this node began following: members that joined since were not there already. */
  readonly since: number;
  /** The baseline read; joins and leaves of this node's sessions wait for it, so none is taken for a member already there. */
  readonly ready: Promise<void>;
  reading: boolean;
  /** The engine said it changed while a read was under way (or before one was scheduled). */
  dirty: boolean;
  scheduled: Timer | undefined;
  dueTimer: Timer | undefined;
  crowded: boolean;
  /** The last count told to the subscribers of a crowded channel. */
  lastCount: string | undefined;
}

export class PresenceEvents {
  readonly #followed = new Map<string, Followed>();
  readonly #listeners: ((transition: ChannelTransition) => void)[] = [];
  readonly #sweep: Timer;

  constructor(
    private readonly engine: Engine,
    private readonly hub: Hub,
    private readonly clock: Clock,
    private readonly options: PresenceEventsOptions,
    private readonly onError: (error: unknown, context: string) => void,
  ) {
    engine.onPresence((channel) => this.#changed(channel));
    this.#sweep = clock.setInterval(() => {
      for (const channel of this.#followed.keys()) this.#read(channel);
    }, options.sweepMs);
    hub.presenceEvents = this;
  }

  /** Tells `listener` of every member change on the channels this node follows. */
  onTransition(listener: (transition: ChannelTransition) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * A local session is about to join (`joining`) or leave `channel`: resolves once the channel is
   * followed (its baseline read), so that the change is seen as one; a join starts following it.
   * Undefined when the change need not wait.
   */
  ready(channel: string, joining: boolean): Promise<void> | undefined {
    const followed = this.#followed.get(channel);
    if (followed !== undefined) return followed.ready;
    return joining && this.options.eventsFor(channel) ? this.#follow(channel).ready : undefined;
  }

  /** The channels followed now (for tests and inspection). */
  get followedCount(): number {
    return this.#followed.size;
  }

  close(): void {
    this.clock.clearInterval(this.#sweep);
    for (const followed of this.#followed.values()) this.#clearTimers(followed);
    this.#followed.clear();
  }

  #follow(channel: string): Followed {
    const followed: Followed = {
      debouncer: new MemberDebouncer(this.options.graceMs),
      since: this.clock.now(),
      ready: Promise.resolve(),
      reading: false,
      dirty: false,
      scheduled: undefined,
      dueTimer: undefined,
      crowded: false,
      lastCount: undefined,
    };
    (followed as { ready: Promise<void> }).ready = this.#readNow(channel, followed);
    this.#followed.set(channel, followed);
    return followed;
  }

  #changed(channel: string): void {
    const followed = this.#followed.get(channel);
    if (followed === undefined) return;
    // A crowded channel is read on the sweep only.
    if (followed.crowded) return void (followed.dirty = true);
    this.#read(channel);
  }

  /** Reads the channel soon: changes arriving together are read once. */
  #read(channel: string): void {
    const followed = this.#followed.get(channel);
    if (followed === undefined) return;
    followed.dirty = true;
    if (followed.reading || followed.scheduled !== undefined) return;
    followed.scheduled = this.clock.setTimeout(() => {
      followed.scheduled = undefined;
      if (this.#followed.get(channel) === followed) void this.#readNow(channel, followed);
    }, 0);
  }

  async #readNow(channel: string, followed: Followed): Promise<void> {
    followed.reading = true;
    followed.dirty = false;
    try {
      const members = membersOf(await this.engine.presence(channel));
      const now = this.clock.now();
      const transitions = [...followed.debouncer.observe(members, now), ...followed.debouncer.due(now)];
      this.#tell(channel, followed, transitions, members);
    } catch (error) {
      // Read again on the next change or sweep; a missed baseline does not make newcomers old.
      followed.debouncer.missedBaseline(followed.since);
      this.onError(error, `presence events ${channel}`);
    } finally {
      followed.reading = false;
    }
    if (this.#followed.get(channel) !== followed) return;
    this.#scheduleDue(channel, followed);
    if (this.#unfollowed(channel, followed)) return;
    if (followed.dirty && !followed.crowded) this.#read(channel);
  }

  #tell(channel: string, followed: Followed, transitions: MemberTransition[], members: readonly PresenceMember[]): void {
    const wasCrowded = followed.crowded;
    followed.crowded = members.length > this.options.maxMembers;
    const now = this.clock.now();
    for (const transition of transitions) {
      if (!followed.crowded && !wasCrowded && 'member' in transition) {
        const left = transition.kind === 'leave';
        const message = presenceEventMessage(channel, transition.kind, shown(transition.member, left), now);
        // A user is not told of its own comings and goings.
        const own = memberKey(transition.member);
        this.hub.deliverEvent(channel, message, (session) => sessionMemberKey(session) !== own);
      }
      for (const listener of this.#listeners) {
        try {
          listener({ ...transition, channel });
        } catch (error) {
          this.onError(error, `presence listener ${channel}`);
        }
      }
    }
    if (!followed.crowded && !wasCrowded) return;
    const count = JSON.stringify({ users: members.length, connections: members.reduce((sum, member) => sum + member.connections, 0) });
    if (count === followed.lastCount) return;
    followed.lastCount = count;
    this.hub.deliverEvent(channel, presenceEventMessage(channel, 'count', JSON.parse(count), now));
  }

  /** Reads again when the next leave falls due (a read, not a guess: the member may be back). */
  #scheduleDue(channel: string, followed: Followed): void {
    const due = followed.debouncer.nextDue();
    if (followed.dueTimer !== undefined) this.clock.clearTimeout(followed.dueTimer);
    followed.dueTimer = undefined;
    if (due === undefined) return;
    followed.dueTimer = this.clock.setTimeout(
      () => {
        followed.dueTimer = undefined;
        this.#read(channel);
      },
      Math.max(0, due - this.clock.now()),
    );
  }

  /**
   * Stops following a channel this node has no part in any more: no subscriber here, no member
   * of its own, none in its grace window (whose leave it would tell). Other nodes' members are
   * followed by their own nodes.
   */
  #unfollowed(channel: string, followed: Followed): boolean {
    if (this.hub.localSubscriberCount(channel) > 0 || followed.debouncer.nextDue() !== undefined) return false;
    const node = this.engine.nodeId;
    if (followed.debouncer.members().some((member) => member.sessions.some((session) => session.node === node))) return false;
    this.#clearTimers(followed);
    this.#followed.delete(channel);
    return true;
  }

  #clearTimers(followed: Followed): void {
    if (followed.scheduled !== undefined) this.clock.clearTimeout(followed.scheduled);
    if (followed.dueTimer !== undefined) this.clock.clearTimeout(followed.dueTimer);
    followed.scheduled = followed.dueTimer = undefined;
  }
}
