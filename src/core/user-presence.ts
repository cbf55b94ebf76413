/**
 * @module
 * User tracking: who is online, across all of a user's sessions and, with Redis, across the
 * cluster — told as `online` when a user's first connection anywhere appears and `offline` once
 * its last one has been gone for the grace window (user-records.ts has the states). Runs only when
 * something wants it (webhooks naming `user.online`/`user.offline`, or `herald.on('online' |
 * 'offline')`): otherwise no session pays for it.
 *
 * A connection is a session whose token named a user (`sub`); anonymous sessions are not users.
 * Each session opened on this node is counted for the user its token named then, and uncounted
 * for that same user when it closes. The engine answers which call made a user online, or was its
 * last connection; each answer goes to one node of the cluster, which tells it. Offline comes from
 * sweeps: the node whose call began a user's grace window sweeps when it ends, and every node
 * sweeps every `sweepMs` — which is how a user whose node died (kill -9: the node's liveness
 * lapses) or a window begun by a node that went away meanwhile goes offline, once.
 */
import type { Clock, Timer } from './clock.js';
import type { Engine } from './engine.js';
import type { Session } from './session.js';
import type { SessionStore } from './session-store.js';

/** A user came online or went offline, as the one node that tells it saw it. */
export interface UserTransition {
  readonly kind: 'online' | 'offline';
  /** The token's `sub`. */
  readonly user: string;
  /** When this node saw it, ms since the epoch. */
  readonly at: number;
}

export interface UserPresenceOptions {
  /** How long a user without a connection stays online. */
  readonly graceMs: number;
  /** How often this node sweeps (offline users whose window another node began, dead nodes' users). */
  readonly sweepMs: number;
}

export class UserPresence {
  /** This node's sessions counted, and the user each was counted for. */
  readonly #counted = new Map<Session, string>();
  readonly #listeners: ((transition: UserTransition) => void)[] = [];
  /** When windows this node began end, oldest first (one grace window after each, so in order). */
  readonly #dues: number[] = [];
  #dueTimer: Timer | undefined;
  readonly #sweep: Timer;
  #sweeping = false;
  /** A sweep was wanted while one was under way: another follows it (a window may have ended meanwhile). */
  #sweepAgain = false;
  #closed = false;

  constructor(
    private readonly engine: Engine,
    sessions: SessionStore,
    private readonly clock: Clock,
    private readonly options: UserPresenceOptions,
    private readonly onError: (error: unknown, context: string) => void,
  ) {
    // The door sets who a session acts for just after creating it (herald-events.ts does the same).
    sessions.onCreated((session) => queueMicrotask(() => this.#opened(session)));
    sessions.onClosed((session) => this.#gone(session));
    // Started late (a listener added after sessions came): those there already count.
    for (const session of sessions.all()) this.#opened(session);
    this.#sweep = clock.setInterval(() => void this.#sweepNow(), options.sweepMs);
  }

  /** Tells `listener` of each user this node saw come online or go offline. */
  onTransition(listener: (transition: UserTransition) => void): void {
    this.#listeners.push(listener);
  }

  close(): void {
    this.#closed = true;
    this.clock.clearInterval(this.#sweep);
    if (this.#dueTimer !== undefined) this.clock.clearTimeout(this.#dueTimer);
    this.#dueTimer = undefined;
  }

  #opened(session: Session): void {
    const user = session.principal?.subject;
    if (this.#closed || session.isClosed || user === undefined || user === '' || this.#counted.has(session)) return;
    this.#counted.set(session, user);
    this.engine.userConnected(user).then(
      (online) => online && this.#tell('online', user),
      (error: unknown) => this.onError(error, `user ${user} connected`),
    );
  }

  #gone(session: Session): void {
    const user = this.#counted.get(session);
    if (user === undefined) return;
    this.#counted.delete(session);
    if (this.#closed) return;
    this.engine.userDisconnected(user).then(
      (leaving) => leaving && this.#sweepAt(this.clock.now() + this.options.graceMs),
      (error: unknown) => this.onError(error, `user ${user} disconnected`),
    );
  }

  #sweepAt(due: number): void {
    this.#dues.push(due);
    if (this.#dues.length === 1) this.#armDue();
  }

  #armDue(): void {
    const next = this.#dues[0];
    if (next === undefined || this.#closed) return;
    this.#dueTimer = this.clock.setTimeout(
      () => {
        this.#dueTimer = undefined;
        const now = this.clock.now();
        while (this.#dues.length > 0 && this.#dues[0]! <= now) this.#dues.shift();
        void this.#sweepNow().finally(() => this.#armDue());
      },
      Math.max(0, next - this.clock.now()),
    );
  }

  async #sweepNow(): Promise<void> {
    // One sweep at a time: a slow engine is not asked again before it answered.
    if (this.#closed) return;
    if (this.#sweeping) return void (this.#sweepAgain = true);
    this.#sweeping = true;
    try {
      do {
        this.#sweepAgain = false;
        const { online, offline } = await this.engine.sweepUsers(this.options.graceMs);
        for (const user of online) this.#tell('online', user);
        for (const user of offline) this.#tell('offline', user);
      } while (this.#sweepAgain && !this.#closed);
    } catch (error) {
      this.onError(error, 'user sweep');
    } finally {
      this.#sweeping = false;
    }
  }

  #tell(kind: UserTransition['kind'], user: string): void {
    if (this.#closed) return;
    const transition: UserTransition = { kind, user, at: this.clock.now() };
    for (const listener of this.#listeners) {
      try {
        listener(transition);
      } catch (error) {
        this.onError(error, `user ${kind} listener`);
      }
    }
  }
}
