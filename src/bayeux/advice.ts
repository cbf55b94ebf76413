/**
 * @module
 * Reconnect advice: what a client should do next. Every reply that can change a client's course
 * carries it; each session close reason maps to advice here and only here.
 */
import type { CloseReason } from '../core/session.js';
import type { Advice } from './message.js';

export interface AdviceTimings {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly maxIntervalMs: number;
}

/** Sent with every successful handshake and connect, so a client never loops without guidance (cometd/cometd#722). */
export function retryAdvice(timings: AdviceTimings): Advice {
  return { reconnect: 'retry', interval: timings.intervalMs, timeout: timings.timeoutMs, maxInterval: timings.maxIntervalMs };
}

/** Extra sessions of one browser poll instead of holding a second connection (Bayeux §Multiple clients). */
export function multipleClientsAdvice(timings: AdviceTimings, pollIntervalMs: number): Advice {
  return { reconnect: 'retry', interval: pollIntervalMs, timeout: timings.timeoutMs, 'multiple-clients': true };
}

export const HANDSHAKE_ADVICE: Advice = { reconnect: 'handshake', interval: 0 };
export const NONE_ADVICE: Advice = { reconnect: 'none' };
/** The engine (Redis) is out of reach for a moment: try again soon, keeping the session. */
export const ENGINE_RETRY_ADVICE: Advice = { reconnect: 'retry', interval: 1000 };

export function adviceForClose(reason: CloseReason): Advice {
  switch (reason) {
    case 'client':
      return NONE_ADVICE;
    case 'expired':
    case 'queue_full':
    case 'shutdown':
    case 'token_expired':
      return HANDSHAKE_ADVICE;
  }
}
