/**
 * @module
 * The values of `herald serve` settings: parsing what flags, variables and config files give
 * (durations, sizes, switches, URLs, key files), and showing them back for `herald config --print`.
 */
import { readFileSync } from 'node:fs';
import type { JSONWebKeySet } from 'jose';
import { validatePermissions } from '../core/access.js';
import type { Permissions } from '../core/access.js';
import { HeraldError } from '../core/errors.js';
import type { TransportName } from './options.js';
import { TRANSPORT_NAMES } from './options.js';

export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

export function formatSize(bytes: number): string {
  for (const [unit, size] of [['gb', 1024 ** 3], ['mb', 1024 ** 2], ['kb', 1024]] as const) if (bytes % size === 0) return `${bytes / size}${unit}`;
  return `${bytes}b`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A file's text, if it can be read and `check` accepts it. */
export function readText<T>(path: string, check: (text: string) => T | undefined): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return check(text);
}

export function parseJwks(text: string): JSONWebKeySet | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && Array.isArray((value as { keys?: unknown }).keys) ? (value as JSONWebKeySet) : undefined;
  } catch {
    return undefined;
  }
}

/** The permissions file, checked rule by rule so an error names the rule and key at fault. */
export function readPermissions(path: string, where: string): Permissions {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
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

export function parseSwitch(text: string): boolean | undefined {
  const value = text.toLowerCase();
  if (value === 'on' || value === 'true' || value === 'yes' || value === '1') return true;
  if (value === 'off' || value === 'false' || value === 'no' || value === '0') return false;
  return undefined;
}

export function parseTransports(text: string): TransportName[] | undefined {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0 || !names.every((name) => (TRANSPORT_NAMES as readonly string[]).includes(name))) return undefined;
  return names as TransportName[];
}

export function parseInteger(text: string, min: number, max: number): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return value >= min && value <= max ? value : undefined;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `30s`, `500ms`, `2m`, `1h`, or a bare number of milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/i.exec(text);
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
