/**
 * @module
 * The kinds of value a setting takes (settings.ts): a duration or size within a range, a count, a
 * choice, a key, a file… Each kind reads the text a flag, variable or config file gives, checks a
 * value given to createHerald, says what it expects (for messages, --help and the README), and
 * shows a value back for `herald config --print`.
 */
import { parseJsonStrict, readSettingFile } from './config-file.js';
import { validatePermissions } from '../core/access.js';
import type { Permissions } from '../core/access.js';
import { HeraldError } from '../core/errors.js';
import { redactUrl } from '../core/redact.js';

/** A kind of value. */
export interface ValueKind<T = unknown> {
  /** What a good value is, as text gives it: `a duration such as 30s, from 10ms to 1h`. */
  readonly expected: string;
  /** The range, for --help and the README (`10ms–1h`), where the kind has one. */
  readonly range?: string;
  /** The value of a flag's (trimmed unless `verbatim`) text, or undefined to refuse it; may throw naming `where`. */
  parse(text: string, where: string): T | undefined;
  /** Whether a value given to createHerald is good. */
  accepts(value: unknown): boolean;
  /** What createHerald's message says a good value is, when it differs from `expected`. */
  readonly expectedOption?: string;
  /** How `herald config --print` shows a value. */
  show(value: T): unknown;
  /** A comma-separated list: a config file may give an array. */
  readonly list?: boolean;
  /** A file path: relative to the config file's folder when given in one; shown as the path. */
  readonly path?: boolean;
  /** Taken as given, not trimmed. */
  readonly verbatim?: boolean;
  /** A config file may give the value itself as an object (checked by this). */
  readonly object?: (value: unknown, key: string) => unknown;
  /** A config file may give any value that is not text (a list of mappings…): read by this, which throws naming `where`. */
  readonly structured?: (value: unknown, where: string) => T;
}

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
export const KB = 1024;
export const MB = 1024 * KB;
export const GB = 1024 * MB;

const same = <T>(value: T): unknown => value;
const isWhole = (value: unknown, min: number, max: number): value is number => Number.isInteger(value) && (value as number) >= min && (value as number) <= max;

/**
 * Milliseconds from `min` to `max`. The ceiling matters: a timer of more than 2^31-1 ms (24.8
 * days) fires at once, and a held connect that returns at once makes every client spin.
 */
export function duration(min: number, max: number): ValueKind<number> {
  const range = `${formatDuration(min)}–${formatDuration(max)}`;
  return {
    expected: `a duration such as 30s, 500ms or 30000 (ms), from ${formatDuration(min)} to ${formatDuration(max)}`,
    expectedOption: `a number of milliseconds from ${min} to ${max} (${range})`,
    range,
    parse: (text) => {
      const value = parseDuration(text);
      return value !== undefined && value >= min && value <= max ? value : undefined;
    },
    accepts: (value) => typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max,
    show: formatDuration,
  };
}

/** Bytes from `min` to `max`. */
export function size(min: number, max: number): ValueKind<number> {
  const range = `${formatSize(min)}–${formatSize(max)}`;
  return {
    expected: `a size such as 1mb, 64kb or 65536 (bytes), from ${formatSize(min)} to ${formatSize(max)}`,
    expectedOption: `a whole number of bytes from ${min} to ${max} (${range})`,
    range,
    parse: (text) => {
      const value = parseSize(text);
      return value !== undefined && value >= min && value <= max ? value : undefined;
    },
    accepts: (value) => isWhole(value, min, max),
    show: formatSize,
  };
}

/** A whole number of `unit` from `min` to `max`; `zero` says what 0 means, when it means something. */
export function count(unit: string, min: number, max: number, zero?: string): ValueKind<number> {
  const number = (n: number) => (n >= 1_000_000 ? n.toLocaleString('en-US') : String(n));
  const range = `${number(min)}–${number(max)}`;
  const meaning = zero === undefined ? '' : ` (0 = ${zero})`;
  return {
    expected: `${unit} from ${min} to ${max}${meaning}`,
    range: zero === undefined ? range : `${range}; 0 = ${zero}`,
    parse: (text) => parseInteger(text, min, max),
    accepts: (value) => isWhole(value, min, max),
    show: same,
  };
}

/** One of `choices`. */
export function choice<T extends string>(choices: readonly T[]): ValueKind<T> {
  const expected = choices.length === 2 ? `${choices[0]} or ${choices[1]}` : `one of ${choices.join(', ')}`;
  return {
    expected,
    parse: (text) => (choices.includes(text as T) ? (text as T) : undefined),
    accepts: (value) => choices.includes(value as T),
    show: same,
  };
}

/** on/off. */
export const onOff: ValueKind<boolean> = { expected: 'on or off', parse: parseSwitch, accepts: (value) => typeof value === 'boolean', show: same };

/** Any text, taken as given. */
export function text(expected: string): ValueKind<string> {
  return { expected, parse: (t) => t, accepts: (value) => typeof value === 'string', show: same, verbatim: true };
}

/** A secret of at least `min` characters: never shown. */
export function secret(expected: string, min: number): ValueKind<string> {
  return { expected: `${expected} of at least ${min} characters`, range: `≥ ${min} characters`, parse: (t) => (t.length >= min ? t : undefined), accepts: (value) => typeof value === 'string' && value.length >= min, show: () => '***' };
}

/** A comma-separated list, each item accepted by `item`. */
export function list(expected: string, item: (value: string) => boolean = () => true): ValueKind<string[]> {
  return {
    expected,
    parse: (t) => {
      const items = t.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
      return items.length > 0 && items.every(item) ? items : undefined;
    },
    accepts: (value) => Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string' && item(v)),
    show: same,
    list: true,
  };
}

/**
 * A file whose text `read` turns into the value (undefined to refuse it, or throw saying why);
 * createHerald takes the value itself, which `accepts` checks.
 */
export function file<T>(expected: string, read: (text: string) => T | undefined, accepts: (value: unknown) => boolean): ValueKind<T> {
  return {
    expected,
    parse: (path, where) => {
      let text: string;
      try {
        text = readSettingFile(path);
      } catch (error) {
        throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${where}: cannot read ${JSON.stringify(path)}: ${(error as Error).message}`, { cause: error });
      }
      try {
        return read(text);
      } catch (error) {
        throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${where} ${JSON.stringify(path)}: ${(error as Error).message}`, { cause: error });
      }
    },
    accepts,
    show: same,
    path: true,
  };
}

export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const [unit, size] of [['d', DAY], ['h', HOUR], ['m', MINUTE], ['s', SECOND]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

export function formatSize(bytes: number): string {
  for (const [unit, size] of [['gb', 1024 ** 3], ['mb', 1024 ** 2], ['kb', 1024]] as const) if (bytes % size === 0) return `${bytes / size}${unit}`;
  return `${bytes}b`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The permissions file, checked rule by rule so an error names the rule and key at fault. */
export function readPermissions(path: string, where: string): Permissions {
  let value: unknown;
  try {
    value = parseJsonStrict(path, readSettingFile(path));
  } catch (error) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${where}: cannot read ${JSON.stringify(path)} as JSON: ${(error as Error).message}`, { cause: error });
  }
  try {
    return validatePermissions(value);
  } catch (error) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${where} ${JSON.stringify(path)}: ${(error as Error).message}`, { cause: error });
  }
}

export function parseEngine(text: string): string | undefined {
  if (text === 'memory') return text;
  try {
    const url = new URL(text);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '' ? text : undefined;
  } catch {
    return undefined;
  }
}

/** An http:// or https:// URL (a hook's): shown with any password or token in it masked. */
export function httpUrl(expected: string): ValueKind<string> {
  const parse = (text: string) => {
    try {
      const url = new URL(text);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' ? text : undefined;
    } catch {
      return undefined;
    }
  };
  return { expected, parse, accepts: (value) => typeof value === 'string' && parse(value) !== undefined, show: (value) => redactUrl(value) };
}

export function parseSwitch(text: string): boolean | undefined {
  const value = text.toLowerCase();
  if (value === 'on' || value === 'true' || value === 'yes' || value === '1') return true;
  if (value === 'off' || value === 'false' || value === 'no' || value === '0') return false;
  return undefined;
}

export function parseInteger(text: string, min: number, max: number): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return value >= min && value <= max ? value : undefined;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: DAY };

/** `30s`, `500ms`, `2m`, `1h`, `7d`, or a bare number of milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/i.exec(text);
  if (match === null) return undefined;
  return Math.round(Number(match[1]) * DURATION_UNITS[(match[2] ?? 'ms').toLowerCase()]!);
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** `1mb`, `64kb`, `512b`, or a bare number of bytes. */
export function parseSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(b|kb|mb|gb)?$/i.exec(text);
  if (match === null) return undefined;
  const bytes = Math.floor(Number(match[1]) * SIZE_UNITS[(match[2] ?? 'b').toLowerCase()]!);
  return bytes >= 1 ? bytes : undefined;
}
