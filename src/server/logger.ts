/**
 * @module
 * Structured logs (npm `pino`): one JSON object per line on stderr, with `time`, `level` (as a
 * word), `message` and the event's fields; errors are serialised with their stack. Herald's code
 * depends only on the small Logger interface, so an application can pass its own; whichever it is,
 * URLs and headers in a line's fields are redacted (core/redact.ts) before they reach it.
 */
import { pino, stdSerializers } from 'pino';
import type { DestinationStream } from 'pino';
import { redactFields } from '../core/redact.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * `write`: where lines go (default: stderr, written synchronously so that the last lines before
 * an exit are never lost).
 */
export function createLogger(level: LogLevel, write?: (line: string) => void): Logger {
  const destination: DestinationStream = write === undefined ? pino.destination({ dest: 2, sync: true }) : { write };
  const log = pino(
    {
      level,
      base: undefined,
      messageKey: 'message',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { error: stdSerializers.err },
    },
    destination,
  );
  return redactingLogger({
    debug: (message, fields) => log.debug(fields ?? {}, message),
    info: (message, fields) => log.info(fields ?? {}, message),
    warn: (message, fields) => log.warn(fields ?? {}, message),
    error: (message, fields) => log.error(fields ?? {}, message),
  });
}

/** Marks a logger that redacts already, so that it is not wrapped twice. */
const REDACTING = Symbol('redacting');

/**
 * `logger` with every line's URLs and headers redacted (redact.ts) on the way in: Herald wraps the
 * logger it is given in this, so a token or password never reaches a log, whoever's logger it is.
 */
export function redactingLogger(logger: Logger): Logger {
  if (REDACTING in logger) return logger;
  const redact = (fields: Record<string, unknown> | undefined) => (fields === undefined ? undefined : redactFields(fields));
  return {
    [REDACTING]: true,
    debug: (message, fields) => logger.debug(message, redact(fields)),
    info: (message, fields) => logger.info(message, redact(fields)),
    warn: (message, fields) => logger.warn(message, redact(fields)),
    error: (message, fields) => logger.error(message, redact(fields)),
  } as Logger;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
