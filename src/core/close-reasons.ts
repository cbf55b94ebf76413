/**
 * @module
 * Why a session ended, and what each reason means to every door: the Bayeux advice and error of
 * the reply that tells the client, the WebSocket close code, and whether a stream says why before
 * it ends (SSE `event: close`, …). One table, so no door decides it on its own
 * (as `centrifugal/centrifuge:disconnect.go` does with its code ranges).
 *
 * The rule: a client is told to stay away (`none`) only when coming back cannot help (it said
 * goodbye itself, or its credentials are refused or revoked) or an operator said so (`banned`);
 * for anything else it handshakes again at once and resubscribes, whoever or whatever ended its session.
 */

/** Why a session ended. A closed set: each has one row in CLOSE_REASONS. */
export type CloseReason =
  | 'client' // the client said goodbye on its own connection (or a plain subscriber went away)
  | 'ended_elsewhere' // a /meta/disconnect for it came from another connection, maybe not the client's
  | 'expired' // no connect within maxInterval
  | 'queue_full' // slow consumer: its queue hit the limit
  | 'token_expired' // the token it was opened with expired and was not refreshed
  | 'token_refused' // a token it sent was forged, or another subject's: do not come back with it
  | 'shutdown' // the server is draining
  | 'connection_lost' // a connection died with deliveries the client had not shown it received
  | 'kicked' // an operator disconnected it and lets it come back (after a permission change, …)
  | 'banned' // an operator disconnected it and told it not to come back
  | 'token_revoked'; // the token it acts with was revoked (control plane): only a fresh one may come back

export interface CloseMeaning {
  /** What the client should do: open a new session now (`handshake`), or not come back (`none`). */
  readonly reconnect: 'handshake' | 'none';
  /**
   * The code of the Bayeux error that names the reason (`<code>:<reason>:session_closed`);
   * undefined when the client asked for the end, whose reply therefore succeeds.
   */
  readonly errorCode: 402 | 403 | undefined;
  /** The WebSocket close code (RFC 6455 §7.4) and text when the socket ends with the session. */
  readonly closeCode: number;
  readonly closeText: string;
  /**
   * Whether a connection that could carry another session (a Bayeux WebSocket) ends too: yes when
   * the client must go elsewhere, slow down or stop; no when it may handshake again on it.
   */
  readonly endsConnection: boolean;
  /** Whether a stream names the reason before it ends: pointless when the client itself ended it. */
  readonly farewell: boolean;
}

const NORMAL = 1000;
const GOING_AWAY = 1001;
const POLICY_VIOLATION = 1008;
const TRY_AGAIN_LATER = 1013;

export const CLOSE_REASONS: Readonly<Record<CloseReason, CloseMeaning>> = {
  client: { reconnect: 'none', errorCode: undefined, closeCode: NORMAL, closeText: 'goodbye', endsConnection: false, farewell: false },
  ended_elsewhere: { reconnect: 'handshake', errorCode: 402, closeCode: NORMAL, closeText: 'session ended by another request: open a new one', endsConnection: false, farewell: true },
  expired: { reconnect: 'handshake', errorCode: 402, closeCode: NORMAL, closeText: 'session expired: open a new one', endsConnection: false, farewell: true },
  queue_full: { reconnect: 'handshake', errorCode: 402, closeCode: TRY_AGAIN_LATER, closeText: 'slow consumer: message queue full', endsConnection: true, farewell: true },
  token_expired: { reconnect: 'handshake', errorCode: 403, closeCode: POLICY_VIOLATION, closeText: 'token expired: subscribe again with a fresh one', endsConnection: false, farewell: true },
  token_refused: { reconnect: 'none', errorCode: 403, closeCode: POLICY_VIOLATION, closeText: 'token refused', endsConnection: true, farewell: true },
  shutdown: { reconnect: 'handshake', errorCode: 402, closeCode: GOING_AWAY, closeText: 'server shutting down', endsConnection: true, farewell: true },
  // Said on the client's next connect, whose connection is a new one: the lost one is gone already.
  connection_lost: { reconnect: 'handshake', errorCode: 402, closeCode: NORMAL, closeText: 'deliveries lost with a connection: open a new session and resume', endsConnection: false, farewell: false },
  // The control plane's (core/control-plane.ts): an operator's words, when given, travel beside the reason.
  kicked: { reconnect: 'handshake', errorCode: 402, closeCode: NORMAL, closeText: 'disconnected by the server: connect again', endsConnection: false, farewell: true },
  banned: { reconnect: 'none', errorCode: 403, closeCode: POLICY_VIOLATION, closeText: 'disconnected by the server: do not come back', endsConnection: true, farewell: true },
  token_revoked: { reconnect: 'none', errorCode: 403, closeCode: POLICY_VIOLATION, closeText: 'token revoked', endsConnection: true, farewell: true },
};

/** A WebSocket close reason is at most 123 bytes of UTF-8 (RFC 6455 §5.5). */
const MAX_CLOSE_TEXT_BYTES = 123;
const utf8 = new TextEncoder();

/** The WebSocket close text for `reason`, with an operator's `note` when given, cut to what a close frame holds. */
export function closeTextOf(reason: CloseReason, note?: string): string {
  const text = note === undefined || note === '' ? CLOSE_REASONS[reason].closeText : `${CLOSE_REASONS[reason].closeText}: ${note}`;
  if (utf8.encode(text).length <= MAX_CLOSE_TEXT_BYTES) return text;
  const characters = Array.from(text);
  while (utf8.encode(characters.join('')).length > MAX_CLOSE_TEXT_BYTES) characters.pop();
  return characters.join('');
}
