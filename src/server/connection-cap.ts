/**
 * @module
 * The default cap on open connections, from the process's open-files limit (`ulimit -n`): a
 * server whose job is holding connections should stop at what the machine allows, not at a
 * figure written for a small one. Some descriptors stay free for Redis, log and static files,
 * and the listening sockets: 5% of the limit, at least 64.
 */
import { readFileSync } from 'node:fs';

/** Without a readable limit (not Linux): the cap Herald had before it read one. */
export const FALLBACK_CONNECTIONS = 10_000;

export interface ConnectionCap {
  /** The default of maxConnections. */
  readonly connections: number;
  /** The soft open-files limit it came from; undefined when none could be read (or unlimited). */
  readonly openFiles: number | undefined;
  /** Descriptors kept free for everything else. */
  readonly reserved: number;
}

/** `limits`: the text of /proc/self/limits (read when not given). */
export function connectionCap(limits?: string): ConnectionCap {
  const openFiles = openFilesLimit(limits);
  if (openFiles === undefined) return { connections: FALLBACK_CONNECTIONS, openFiles: undefined, reserved: 0 };
  const reserved = Math.max(64, Math.ceil(openFiles * 0.05));
  return { connections: Math.max(1, openFiles - reserved), openFiles, reserved };
}

function openFilesLimit(limits: string | undefined): number | undefined {
  let text = limits;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : undefined;
}
