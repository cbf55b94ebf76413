/**
 * @module
 * Reconnect advice: what a client should do next. Every reply that can change a client's course
 * carries it; what a closed session advises comes from the table of close reasons (core/close-reasons.ts).
 */
import { CLOSE_REASONS } from '../core/close-reasons.js';
import type { CloseReason } from '../core/close-reasons.js';
import { BayeuxErrors } from './errors.js';
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

/**
 * How a reply tells a client its session ended: it succeeds with `none` when the client asked for
 * the end; otherwise it fails naming the reason, with the advice the table gives (handshake, mostly).
 */
export function closedSession(reason: CloseReason, note?: string): { successful: boolean; error?: string; advice: Advice } {
  const { reconnect, errorCode } = CLOSE_REASONS[reason];
  const advice = reconnect === 'none' ? NONE_ADVICE : HANDSHAKE_ADVICE;
  if (errorCode === undefined) return { successful: true, advice };
  return { successful: false, error: BayeuxErrors.sessionClosed(reason, note), advice };
}
