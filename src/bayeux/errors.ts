/**
 * @module
 * Bayeux errors are data: `code:args:message` strings in a reply with `successful:false`.
 * Codes follow CometD where it has one and Faye otherwise; clients act on `successful` and
 * `advice.reconnect`, not on the code (BAYEUX.md §1.4).
 */
import { CLOSE_REASONS } from '../core/close-reasons.js';
import type { CloseReason } from '../core/close-reasons.js';

/** Error args must not break the `code:args:message` form, nor carry unbounded input. */
function arg(value: string): string {
  return value.replace(/[\u0000-\u001f:,]/g, '').slice(0, 128);
}

export const BayeuxErrors = {
  badRequest: (reason: string) => `400::${reason}`,
  notAnObject: () => '400::message is not a JSON object',
  handshakeNotAlone: () => '400::a handshake must be alone in its request',
  invalidId: () => '400:id:Invalid message id',
  missing: (field: string) => `402:${arg(field)}:Missing required parameter`,
  sessionUnknown: () => '402::session_unknown',
  /** `note`: an operator's words on why (control plane), as a second arg. */
  sessionClosed: (reason: CloseReason, note?: string) => `${CLOSE_REASONS[reason].errorCode ?? 402}:${reason}${note ? `,${arg(note)}` : ''}:session_closed`,
  handshakeDenied: (reason: string) => `403:${arg(reason)}:handshake_denied`,
  subscribeDenied: (reason: string) => `403:${arg(reason)}:subscribe_denied`,
  publishDenied: (reason: string) => `403:${arg(reason)}:publish_denied`,
  tokenRefused: (reason: string) => `403:${arg(reason)}:token_refused`,
  /** The application's backend (a decision hook) refused, saying why. */
  hookDenied: (reason: string) => `403:${arg(reason)}:hook_denied`,
  /** No decision could be had from the backend (timeout, error, bad answer): retry later. */
  hookUnavailable: (problem: string) => `503:${arg(problem)}:hook_unavailable`,
  tooManySubscriptions: (max: number) => `403:${max}:too many subscriptions for one session`,
  messageTooLarge: (size: number, max: number) => `413:${size},${max}:message too large (bytes; most allowed)`,
  rateLimited: (rate: number) => `429:${rate}:too many messages per second`,
  versionMismatch: (version: string) => `300:${arg(version)}:Version mismatch`,
  connectionTypes: (types: readonly string[]) => `301:${arg(types.join(' '))}:Connection types not supported`,
  forbiddenChannel: (channel: string) => `403:${arg(channel)}:Forbidden channel`,
  messageDeleted: () => '404::message_deleted',
  invalidChannel: (channel: string) => `405:${arg(channel)}:Invalid channel`,
  invalidSubscription: (subscription: string) => `405:${arg(subscription)}:Invalid subscription`,
  invalidData: () => '405:data:data cannot be serialised',
  serviceFailed: (channel: string) => `500:${arg(channel)}:Service failed`,
  engineUnavailable: () => '503::engine_unavailable',
  /** The engine may have done it (a publish may be stored): retrying may do it twice. */
  engineNoAnswer: () => '504::engine_no_answer',
  shuttingDown: () => '503::server_shutting_down',
} as const;
