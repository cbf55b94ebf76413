/**
 * @module
 * `herald.on(…)`: what happens to sessions, subscriptions and members, told to the application's
 * code — for audit logs and presence-driven logic. Session and subscription events are this
 * node's; `join` and `leave` are the debounced member changes of channels with join/leave events
 * (core/presence-events.ts), as this node saw them: in a cluster, every node with subscribers
 * on the channel, or members of its own, tells its own listeners. `online` and `offline`
 * (core/user-presence.ts) are told once in the cluster, by the node that saw the change; user
 * tracking starts with the first such listener (every node must track: give each one a listener,
 * or webhooks that want user events).
 */
import type { Principal } from '../core/access.js';
import type { Hub } from '../core/hub.js';
import type { PresenceEvents } from '../core/presence-events.js';
import type { CloseReason, Session } from '../core/session.js';
import type { SessionStore } from '../core/session-store.js';
import type { UserPresence } from '../core/user-presence.js';

/** Who acts, as a session event tells it. */
export interface SessionEvent {
  /** The session's public id (as presence and inspection show it). */
  readonly session: string;
  /** The token's `sub`; undefined when anonymous. */
  readonly subject: string | undefined;
  /** Every claim of the token (with a decision hook's `sub` and `info`); undefined when anonymous. */
  readonly claims: Readonly<Record<string, unknown>> | undefined;
  /** The connection type (`websocket`, `long-polling`, …, or `rest-sse`, `rest-websocket`, …). */
  readonly transport: string | undefined;
}

export interface SessionCloseEvent extends SessionEvent {
  /** Why it ended (`client`, `expired`, `shutdown`, `queue_full`, …). */
  readonly reason: CloseReason;
}

export interface SubscriptionEvent extends SessionEvent {
  /** The channel or pattern subscribed to or left. */
  readonly channel: string;
}

/** A member came (`join`) or left after the grace window (`leave`) a channel with join/leave events. */
export interface MemberEvent {
  readonly channel: string;
  /** The user: a token's `sub`, or an anonymous session's public id (`anonymous`). */
  readonly subject: string;
  readonly anonymous?: true;
  /** What the member shows (the token's `info` claim), if anything. */
  readonly info?: unknown;
  /** Its connections to the channel (0 once it left). */
  readonly connections: number;
}

/** A user (a token's `sub`) came online — its first connection anywhere — or went offline, its last one gone for the grace window. */
export interface UserEvent {
  readonly subject: string;
  /** When it was seen, ms since the epoch. */
  readonly at: number;
}

export interface HeraldEvents {
  session: (event: SessionEvent) => void;
  sessionClose: (event: SessionCloseEvent) => void;
  subscribe: (event: SubscriptionEvent) => void;
  unsubscribe: (event: SubscriptionEvent) => void;
  join: (event: MemberEvent) => void;
  leave: (event: MemberEvent) => void;
  online: (event: UserEvent) => void;
  offline: (event: UserEvent) => void;
}

export type HeraldEventName = keyof HeraldEvents;

export interface HeraldEventsParts {
  readonly sessions: SessionStore;
  readonly hub: Hub;
  readonly presenceEvents: PresenceEvents | undefined;
  /** Starts user tracking (once) and returns it. */
  readonly trackUsers: () => UserPresence;
  readonly onError: (error: unknown, event: string) => void;
}

/**
 * Wires the listeners and returns `on`. Nothing is computed for an event nobody listens to: a
 * server without listeners pays one size check per event.
 */
export function heraldEvents({ sessions, hub, presenceEvents, trackUsers, onError }: HeraldEventsParts): <K extends HeraldEventName>(event: K, listener: HeraldEvents[K]) => () => void {
  const listeners: { [K in HeraldEventName]: Set<HeraldEvents[K]> } = {
    session: new Set(),
    sessionClose: new Set(),
    subscribe: new Set(),
    unsubscribe: new Set(),
    join: new Set(),
    leave: new Set(),
    online: new Set(),
    offline: new Set(),
  };
  let trackingUsers = false;
  const emit = <K extends HeraldEventName>(name: K, event: () => Parameters<HeraldEvents[K]>[0]): void => {
    const set = listeners[name] as Set<(event: Parameters<HeraldEvents[K]>[0]) => void>;
    if (set.size === 0) return;
    const value = event();
    for (const listener of [...set]) {
      try {
        listener(value);
      } catch (error) {
        onError(error, name);
      }
    }
  };
  // Told once the door set who the session acts for (just after it is created).
  // Without a listener, no microtask (and closure) per session: a reconnect storm opens them by the ten thousand.
  sessions.onCreated((session) => listeners.session.size > 0 && queueMicrotask(() => !session.isClosed && emit('session', () => sessionEvent(session))));
  sessions.onClosed((session, reason) => emit('sessionClose', () => ({ ...sessionEvent(session), reason })));
  hub.onSubscription((session, channel, subscribed) => emit(subscribed ? 'subscribe' : 'unsubscribe', () => ({ ...sessionEvent(session), channel })));
  presenceEvents?.onTransition((transition) => {
    if (!('member' in transition)) return;
    const { user, anonymous, info, connections } = transition.member;
    const left = transition.kind === 'leave';
    emit(transition.kind, () => ({ channel: transition.channel, subject: user, ...(anonymous ? { anonymous } : {}), ...(info === undefined ? {} : { info }), connections: left ? 0 : connections }));
  });
  return (event, listener) => {
    const set = listeners[event] as Set<typeof listener> | undefined;
    if (set === undefined) throw new TypeError(`no such event: ${String(event)} (use ${Object.keys(listeners).join(', ')})`);
    if (typeof listener !== 'function') throw new TypeError(`the listener of ${event} must be a function`);
    set.add(listener);
    if ((event === 'online' || event === 'offline') && !trackingUsers) {
      trackingUsers = true;
      trackUsers().onTransition(({ kind, user, at }) => emit(kind, () => ({ subject: user, at })));
    }
    return () => void set.delete(listener);
  };
}

function sessionEvent(session: Session): SessionEvent {
  const principal: Principal | undefined = session.principal;
  return { session: session.publicId, subject: principal?.subject, claims: principal?.claims, transport: session.transport };
}
