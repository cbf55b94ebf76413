/**
 * @module
 * What a Session asks of those who drive it (session.ts): the held request, the push stream, the
 * server's hooks and limits. Kept apart so that session.ts is the session's behaviour alone.
 */
import type { Clock } from './clock.js';
import type { CloseReason } from './close-reasons.js';
import type { Deadlines } from './deadlines.js';
import type { MemoryBudget } from './memory-budget.js';
import type { Delivery } from './message.js';
import type { Session } from './session.js';

/** Why a held request was resumed. */
export type ResumeReason = 'messages' | 'timeout' | 'replaced' | 'closed';

/** A held request. `resume` is called exactly once, unless the holder cancels first. */
export interface Waiter {
  resume(reason: ResumeReason): void;
}

/**
 * A push connection (WebSocket, server-sent events): takes deliveries as they come, in order,
 * without ending. At most one per session; while attached the session does not expire.
 */
export interface Stream {
  /**
   * Sends deliveries, in order. False when the connection can no longer send: the session keeps
   * them queued for whichever connection comes next, and forgets this stream.
   */
  push(deliveries: Delivery[]): boolean;
  /**
   * The session ended; the stream decides whether its connection ends with it. `note`: an
   * operator's words on why (control plane), said beside the reason where the stream can.
   * `told`: a held connect carried the reason to the client (false: none was held).
   */
  sessionClosed(reason: CloseReason, note?: string, told?: boolean): void;
  /**
   * Tells the client, in the stream's own form, that `channel` (a name or pattern) lost messages.
   * A stream without it leaves gaps to a held request (a Bayeux connect reply carries them).
   */
  gap?(channel: string): void;
  /**
   * The client's connects travel on this stream's connection, after what it pushed (a Bayeux
   * WebSocket): a connect shows which deliveries arrived, and the session can tell when a
   * connection died with some that may not have (see connectArrived).
   */
  readonly carriesConnects?: boolean;
}

/** What every session of a store shares: one object, not fields (or closures) per session. */
export interface SessionHooks {
  readonly limits: SessionLimits;
  readonly clock: Clock;
  /** Called once per burst when messages arrive for a held session, so flushes batch per tick. */
  readonly onReady: (session: Session) => void;
  /** Called when a full queue drops its oldest delivery (policy drop-oldest). */
  readonly onDropped?: (session: Session) => void;
  /** Called the first time any session takes a delivery for sending (publish→deliver latency). */
  readonly onFirstSent?: (delivery: Delivery) => void;
  /** Counts what the queue holds against the server's memory budget. */
  readonly memory?: MemoryBudget;
  /** When held requests time out: shared timers, not one per hold. */
  readonly holds: Deadlines;
}

/**
 * What a full queue does: close the session (`disconnect`: the client reconnects and resumes
 * from history), or drop its oldest delivery (`drop-oldest`) and tell the client which channels
 * lost messages. Only sessions that can be told (they asked for message ids) drop; others close.
 */
export type SlowConsumerPolicy = 'disconnect' | 'drop-oldest';

export interface SessionLimits {
  readonly maxQueue: number;
  readonly slowConsumer: SlowConsumerPolicy;
  /** Messages per second the client may send (bursts of twice that); 0 = unlimited. */
  readonly messageRate: number;
}
