/**
 * @module
 * Options shared by the client commands (`publish`, `subscribe`): which server, and how to reach it.
 */
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { HeraldError } from '../core/errors.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface ParsedCommand {
  readonly positionals: string[];
  readonly values: Record<string, string | undefined>;
}

/** Parses `argv` with string options only; a parse error is a usage error (exit 2). */
export function parseCommand(argv: readonly string[], options: Record<string, { short?: string }>, positionals: number): ParsedCommand {
  const config: ParseArgsConfig = {
    args: [...argv],
    options: Object.fromEntries(Object.entries(options).map(([name, o]) => [name, { type: 'string' as const, ...o }])),
    strict: true,
    allowPositionals: true,
  };
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs(config) as typeof parsed;
  } catch (error) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', (error as Error).message, { cause: error });
  }
  if (parsed.positionals.length !== positionals) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `expected ${positionals} argument${positionals === 1 ? '' : 's'}, got ${parsed.positionals.length}`);
  }
  return { positionals: parsed.positionals, values: parsed.values as Record<string, string | undefined> };
}

/** The server's base URL from `--url` or HERALD_URL, checked. */
export function serverUrl(flag: string | undefined, env: NodeJS.ProcessEnv): URL {
  const text = flag ?? env.HERALD_URL ?? DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `--url (HERALD_URL): expected an http(s) URL, got ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `--url (HERALD_URL): expected an http(s) URL, got ${JSON.stringify(text)}`);
  }
  return url;
}
