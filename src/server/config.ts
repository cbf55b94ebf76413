/**
 * @module
 * `herald serve` settings from flags, environment variables and a config file (JSON or YAML).
 * Precedence: flag, then environment variable, then config file, then default. Every value goes
 * through the same parser whatever its source, and a bad one is rejected naming where it came
 * from: `--max-rate (HERALD_MAX_RATE): …` or `herald.yaml: max-rate: …`. Secrets are never echoed.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { HeraldError } from '../core/errors.js';
import { readConfigDocument, suggest } from './config-file.js';
import { isRecord } from './config-values.js';
import type { LogLevel } from './logger.js';
import type { HeraldOptions } from './options.js';
import { defaultText, envOf, HERALD_DEFAULTS, SETTINGS, validate } from './settings.js';
import type { Setting, Settings } from './settings.js';

export { parseDuration, parseSize } from './config-values.js';

export interface ServeConfig {
  readonly port: number;
  readonly host: string;
  readonly logLevel: LogLevel;
  readonly herald: HeraldOptions;
}

/** A serve setting: one of SETTINGS that has a flag. */
interface ServeSetting extends Setting {
  readonly flag: string;
  readonly env: string;
}

const SERVE: ReadonlyMap<string, ServeSetting> = new Map(
  SETTINGS.filter((setting) => setting.flag !== undefined).map((setting) => [setting.flag!, { ...setting, flag: setting.flag!, env: envOf(setting)! }]),
);

/** Every serve flag, its environment variable and its help line (from SETTINGS). A config file's keys are the flag names. */
export const SERVE_SETTINGS: Readonly<Record<string, { readonly env: string; readonly help: string; readonly short?: string; readonly secret?: boolean }>> = Object.fromEntries(
  [...SERVE].map(([name, setting]) => [name, { env: setting.env, help: setting.help, ...(setting.short === undefined ? {} : { short: setting.short }), ...(setting.secret === true ? { secret: true } : {}) }]),
);

export type SettingName = string;
type Name = string;

/** Where a setting's value came from. */
export type SettingSource = 'flag' | 'env' | 'file' | 'default';

/** One setting as `herald config --print` shows it: secrets masked, durations and sizes with units. */
export interface EffectiveSetting {
  readonly value: unknown;
  readonly source: SettingSource;
}

const NAMES = [...SERVE.keys()];

function settingOf(name: Name): ServeSetting {
  return SERVE.get(name)!;
}

/** The default in force under `herald serve`: its own, else createHerald's. */
function defaultOf(setting: ServeSetting): unknown {
  return setting.serveDefault ?? setting.default;
}

/** The default serve passes on itself; createHerald fills in the rest. */
function ownDefaultOf(setting: ServeSetting): unknown {
  return setting.option === undefined ? setting.default : setting.serveDefault;
}

/** The options part of `herald serve --help`: flag, variable, what it is for, default and range. */
export function serveOptionsHelp(): string {
  return [...SERVE.values()]
    .map((setting) => {
      const flag = `--${setting.flag}${setting.short === undefined ? '' : `, -${setting.short}`}`;
      const notes = [`default ${defaultText(setting)}`, ...(setting.kind.range === undefined ? [] : [setting.kind.range])];
      return `  ${flag.padEnd(22)} ${setting.env.padEnd(26)} ${setting.help.replace(/`/g, '').replace(/\*([^*]+)\*/g, '$1')} (${notes.join('; ')})`;
    })
    .join('\n');
}

/** Resolves `herald serve`'s flags (`argv`), environment (`env`) and the config file they name. */
export function resolveServeConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServeConfig {
  return resolveSettings(argv, env).config;
}

/**
 * Every setting as `herald serve` would resolve it from the same `argv` and `env`, with where its
 * value came from; secrets are masked (`***`, or only the password of a Redis URL). Throws as
 * `resolveServeConfig` does for a bad value.
 */
export function effectiveServeConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Record<SettingName, EffectiveSetting> {
  const { settings } = resolveSettings(argv, env);
  return Object.fromEntries(NAMES.map((name) => [name, { value: showValue(name, settings[name]!), source: settings[name]!.source }])) as Record<
    SettingName,
    EffectiveSetting
  >;
}

interface Resolved {
  readonly source: SettingSource;
  /** The value as given (a path for file settings), or undefined. */
  readonly given: unknown;
  /** The parsed value, or undefined when left to a default. */
  readonly value: unknown;
}

function resolveSettings(argv: readonly string[], env: NodeJS.ProcessEnv): { config: ServeConfig; settings: Record<Name, Resolved> } {
  const options = Object.fromEntries(NAMES.map((name) => [name, { type: 'string' as const, ...(settingOf(name).short === undefined ? {} : { short: settingOf(name).short }) }]));
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', (error as Error).message, { cause: error });
  }
  const fromArgs = (name: Name): { text: string; source: 'flag' | 'env' } | undefined => {
    const flag = values[name];
    if (typeof flag === 'string') return { text: flag, source: 'flag' };
    const fromEnv = env[settingOf(name).env];
    return fromEnv === undefined || fromEnv === '' ? undefined : { text: fromEnv, source: 'env' };
  };

  const configPath = fromArgs('config');
  const file = configPath === undefined ? undefined : loadConfigFile(configPath.text);

  const settings = {} as Record<Name, Resolved>;
  for (const name of NAMES) {
    // A file's value is checked even when a flag or variable wins over it: the file is wrong.
    const entry = file?.entries.get(name);
    const fromFile = entry === undefined || file === undefined ? undefined : parseFileValue(name, entry, file);
    const given = fromArgs(name);
    if (given !== undefined) {
      const where = `--${name} (${settingOf(name).env})`;
      settings[name] = { source: given.source, given: given.text, value: parseText(name, given.text, where) };
    } else {
      settings[name] = fromFile ?? { source: 'default', given: undefined, value: undefined };
    }
  }

  const valueOf = (name: Name): unknown => settings[name]!.value ?? ownDefaultOf(settingOf(name));
  const herald: Record<string, unknown> = {};
  for (const name of NAMES) {
    const option = settingOf(name).option;
    if (option !== undefined) herald[option] = valueOf(name);
  }
  // What createHerald checks across settings (the drain window within the grace…), refused here
  // too, so that `herald config --print` refuses what `herald serve` would.
  validate({ ...HERALD_DEFAULTS, ...Object.fromEntries(Object.entries(herald).filter(([, value]) => value !== undefined)) } as Settings);
  const config: ServeConfig = {
    port: valueOf('port') as number,
    host: valueOf('host') as string,
    logLevel: valueOf('log-level') as LogLevel,
    herald: herald as HeraldOptions,
  };
  return { config, settings };
}

/** A value from its text, or a HeraldError naming `where` and describing `original` (a secret is never echoed). */
function parseText(name: Name, text: string, where: string, original: unknown = text): unknown {
  const kind = settingOf(name).kind;
  const value: unknown = kind.parse(kind.verbatim === true ? text : text.trim(), where);
  if (value === undefined) throw refused(name, where, original);
  return value;
}

/** A config file's value: converted to a flag's text and parsed as a flag's, or (permissions) an object checked as such. */
function parseFileValue(name: Name, entry: { readonly key: string; readonly value: unknown }, file: ConfigFile): Resolved {
  const kind = settingOf(name).kind;
  const where = `${file.label}: ${entry.key}`;
  if (kind.object !== undefined && isRecord(entry.value)) {
    try {
      return { source: 'file', given: entry.value, value: kind.object(entry.value, entry.key) };
    } catch (error) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${file.label}: ${(error as Error).message}`, { cause: error });
    }
  }
  if (kind.structured !== undefined && typeof entry.value === 'object' && entry.value !== null) {
    return { source: 'file', given: entry.value, value: kind.structured(entry.value, where) };
  }
  let text = fileValueText(name, entry.value, where);
  // A relative path in the file is relative to the file, wherever herald is started from.
  if (kind.path === true && text.trim() !== '' && !isAbsolute(text.trim())) text = resolve(file.dir, text.trim());
  return { source: 'file', given: text, value: parseText(name, text, where, entry.value) };
}

function refused(name: Name, where: string, got: unknown): HeraldError {
  return new HeraldError('HERALD_ERR_INVALID_OPTION', `${where}: expected ${settingOf(name).kind.expected}, got ${describe(name, got)}`);
}

function describe(name: Name, value: unknown): string {
  if (settingOf(name).secret === true) {
    if (typeof value === 'string') return `a value of ${value.length} characters`;
    return Array.isArray(value) ? 'a list' : value === null ? 'null' : `a ${typeof value === 'object' ? 'mapping' : typeof value}`;
  }
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** A config file value as the text a flag would give: numbers and booleans as written, arrays joined for lists. */
function fileValueText(name: Name, value: unknown, where: string): string {
  if (typeof value === 'string') return value;
  // Text taken as written (keys, names) must be written as text: YAML and JSON read
  // 1234567890123456789 as a number that has lost digits, and a key would silently change.
  if ((typeof value === 'number' || typeof value === 'boolean') && (settingOf(name).kind.verbatim === true || settingOf(name).secret === true)) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${where}: expected ${settingOf(name).kind.expected} written as a string (in quotes), got ${describe(name, value)}`);
  }
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') return String(value);
  if (settingOf(name).kind.list === true && Array.isArray(value)) {
    const items = value.map((item) => (typeof item === 'number' && Number.isFinite(item) ? String(item) : item));
    if (items.every((item): item is string => typeof item === 'string' && !item.includes(','))) return items.join(',');
  }
  throw refused(name, where, value);
}

interface ConfigFile {
  /** The path as given, to name the file in messages. */
  readonly label: string;
  /** Relative paths in the file are relative to this. */
  readonly dir: string;
  readonly entries: Map<Name, { readonly key: string; readonly value: unknown }>;
}

const CAMEL_NAMES = new Map<string, Name>(NAMES.map((name) => [name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), name]));

/** Reads and checks a config file: JSON or YAML by extension, a mapping of known settings. */
function loadConfigFile(path: string): ConfigFile {
  const document = readConfigDocument(path, `--config (${settingOf('config').env})`);
  if (document !== null && !isRecord(document)) {
    const got = Array.isArray(document) ? 'a list' : `a ${typeof document}`;
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${path}: expected a mapping of settings (such as port: 8080), got ${got}`);
  }
  const entries = new Map<Name, { key: string; value: unknown }>();
  for (const [key, value] of Object.entries(document ?? {})) {
    const name = SERVE.has(key) ? key : CAMEL_NAMES.get(key);
    if (name === undefined) {
      const suggestion = suggest(key, NAMES.filter((known) => known !== 'config'));
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${path}: unknown setting ${JSON.stringify(key)}${suggestion === undefined ? '' : ` (did you mean ${suggestion}?)`}`);
    }
    if (name === 'config') throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${path}: ${key}: a config file cannot name another; use --config or ${settingOf('config').env}`);
    const previous = entries.get(name);
    if (previous !== undefined) throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${path}: ${name} is given twice (${previous.key} and ${key})`);
    entries.set(name, { key, value });
  }
  return { label: path, dir: dirname(resolve(path)), entries };
}

/** A setting's value for `herald config --print`: the default filled in, units put back, secrets masked. */
function showValue(name: Name, resolved: Resolved): unknown {
  const setting = settingOf(name);
  if (resolved.source === 'default') {
    const value = defaultOf(setting);
    return value === undefined ? null : setting.kind.show(value);
  }
  if (setting.kind.path === true) return resolved.given;
  return setting.kind.show(resolved.value);
}
