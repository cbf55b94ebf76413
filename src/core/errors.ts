/**
 * @module
 * Programmer and configuration errors. Protocol errors are data (see bayeux/errors.ts), not throws.
 *
 * Codes:
 * - HERALD_ERR_INVALID_CHANNEL: a channel name or pattern breaks the Bayeux grammar.
 * - HERALD_ERR_INVALID_OPTION: an option or flag has a value Herald cannot use.
 * - HERALD_ERR_CLOSED: the engine or server was used after close().
 * - HERALD_ERR_INVALID_DATA: published data cannot be serialised as JSON (undefined, a BigInt, a cycle).
 * - HERALD_ERR_MESSAGE_TOO_LARGE: published data is larger, as JSON, than maxMessageBytes.
 * - HERALD_ERR_INVALID_REQUEST: a control-plane or inspection request (`herald.disconnect()`,
 *   `herald.revoke()`, `herald.channels()`, …), a batch (`herald.publishBatch()`) or an
 *   idempotency key Herald cannot use: it names nothing, or too much, or a value out of range;
 *   the message says which.
 * - HERALD_ERR_IDEMPOTENCY_CONFLICT: an idempotency key used within its window for a publish to
 *   another channel (HTTP 409): a key names one message.
 * - HERALD_ERR_ENGINE_UNAVAILABLE: the engine cannot reach its store (Redis) now; the operation
 *   did not happen and may be retried. Front doors answer it with 503 (Bayeux: `503::…`) — unless
 *   `outcomeUnknown`: the request reached the store and no answer came back (a timeout, a
 *   connection cut mid-way), so it may have been carried out; then 504 (Bayeux: `504::…`).
 */
export type HeraldErrorCode = 'HERALD_ERR_INVALID_CHANNEL' | 'HERALD_ERR_INVALID_OPTION' | 'HERALD_ERR_CLOSED'
  | 'HERALD_ERR_INVALID_DATA'
  | 'HERALD_ERR_MESSAGE_TOO_LARGE'
  | 'HERALD_ERR_INVALID_REQUEST'
  | 'HERALD_ERR_IDEMPOTENCY_CONFLICT'
  | 'HERALD_ERR_ENGINE_UNAVAILABLE';

export class HeraldError extends Error {
  override readonly name = 'HeraldError';
  readonly code: HeraldErrorCode;
  /** The store may have carried the operation out (see HERALD_ERR_ENGINE_UNAVAILABLE). */
  readonly outcomeUnknown: boolean;

  constructor(code: HeraldErrorCode, message: string, options?: { cause?: unknown; outcomeUnknown?: boolean }) {
    super(message, options);
    this.code = code;
    this.outcomeUnknown = options?.outcomeUnknown === true;
  }
}

/** True for the error an engine throws while its store is out of reach. */
export function isEngineUnavailable(error: unknown): error is HeraldError {
  return error instanceof HeraldError && error.code === 'HERALD_ERR_ENGINE_UNAVAILABLE';
}
