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
  const enabled = (level: Exclude<LogLevel, 'silent'>) => log.isLevelEnabled(level);
  return redactingLogger({
    debug: enabled('debug') ? (message, fields) => log.debug(fields ?? {}, message) : NO_LOG,
    info: enabled('info') ? (message, fields) => log.info(fields ?? {}, message) : NO_LOG,
    warn: enabled('warn') ? (message, fields) => log.warn(fields ?? {}, message) : NO_LOG,
    error: enabled('error') ? (message, fields) => log.error(fields ?? {}, message) : NO_LOG,
  });
}

/**
 * What a logger's method is when its level is off: redaction skips it, and Herald skips building
 * the fields of its per-connection debug lines (logsDebug), which would cost on every connection.
 */
export const NO_LOG = (): void => {};

/** Whether `logger` writes debug lines (false only when it says so with NO_LOG). */
export function logsDebug(logger: Logger): boolean {
  return logger.debug !== NO_LOG;
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
  const wrap = (level: keyof Logger): Logger['debug'] => (logger[level] === NO_LOG ? NO_LOG : (message, fields) => logger[level](message, redact(fields)));
  return {
    [REDACTING]: true,
    debug: wrap('debug'),
    info: wrap('info'),
    warn: wrap('warn'),
    error: wrap('error'),
  } as Logger;
}

export const silentLogger: Logger = { debug: NO_LOG, info: NO_LOG, warn: NO_LOG, error: NO_LOG };
