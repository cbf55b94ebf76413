/**
 * @module
 * `herald serve` settings from flags, environment variables and a config file (JSON or YAML).
 * Precedence: flag, then environment variable, then config file, then default. Every value goes
 * through the same parser whatever its source, and a bad one is rejected naming where it came
 * from: `--max-rate (HERALD_MAX_RATE): …` or `herald.yaml: max-rate: …`. Secrets are never echoed.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { validatePermissions } from '../core/access.js';
import { HeraldError } from '../core/errors.js';
import { readConfigDocument, suggest } from './config-file.js';
import { redactUrl } from '../core/redact.js';
import {
  formatDuration,
  formatSize,
  isRecord,
  parseDuration,
  parseEngine,
  parseInteger,
  parseJwks,
  parseSize,
  parseSwitch,
  parseTransports,
  readPermissions,
  readText,
} from './config-values.js';
import type { HeraldOptions } from './options.js';
import { HERALD_DEFAULTS, TRANSPORT_NAMES } from './options.js';
import type { LogLevel } from './logger.js';
import { LOG_LEVELS } from './logger.js';

export { parseDuration, parseSize } from './config-values.js';

export interface ServeConfig {
  readonly port: number;
  readonly host: string;
  readonly logLevel: LogLevel;
  readonly herald: HeraldOptions;
}

interface Setting {
  readonly env: string;
  /** Never echoed in messages; masked by `herald config --print`. */
  readonly secret?: boolean;
  readonly help: string;
  readonly short?: string;
}

/** Every serve flag, its environment variable and its help line. A config file's keys are the flag names. */
export const SERVE_SETTINGS = {
  config: { env: 'HERALD_CONFIG', help: 'JSON or YAML file of these settings, keyed by flag name (port: 8080, max-rate: 50, …); flags and variables win over it' },
  port: { env: 'HERALD_PORT', short: 'p', help: 'TCP port (default 8080; 0 picks a free one)' },
  host: { env: 'HERALD_HOST', help: 'interface to bind (default 127.0.0.1)' },
  path: { env: 'HERALD_PATHS', help: 'Bayeux endpoint paths, comma-separated (default /bayeux,/cometd)' },
  timeout: { env: 'HERALD_TIMEOUT', help: 'how long a connect is held, e.g. 30s or 30000 (ms) (default 30s)' },
  interval: { env: 'HERALD_INTERVAL', help: 'delay advised between connects (default 0)' },
  'max-interval': { env: 'HERALD_MAX_INTERVAL', help: 'session expiry without a connect (default 10s)' },
  'allowed-origins': { env: 'HERALD_ALLOWED_ORIGINS', help: 'browser origins allowed: comma-separated origins, "localhost", or "*" (default localhost)' },
  'max-body': { env: 'HERALD_MAX_BODY', help: 'largest request body, e.g. 1mb or 65536 (default 1mb)' },
  'max-queue': { env: 'HERALD_MAX_QUEUE', help: 'messages queued per session before the slow-consumer policy acts (default 10000)' },
  'slow-consumer': { env: 'HERALD_SLOW_CONSUMER', help: 'when a queue is full: disconnect (client resumes from history) or drop-oldest (with a gap signal) (default disconnect)' },
  'max-message': { env: 'HERALD_MAX_MESSAGE', help: 'largest published message, as JSON, e.g. 64kb (default 128kb)' },
  'max-rate': { env: 'HERALD_MAX_RATE', help: 'messages per second one Bayeux client may send, bursts of twice that; 0 = unlimited (default 100)' },
  'max-subscriptions': { env: 'HERALD_MAX_SUBSCRIPTIONS', help: 'subscriptions per session (default 1024)' },
  'max-sessions-per-ip': { env: 'HERALD_MAX_SESSIONS_PER_IP', help: 'sessions one IP address may hold; behind a proxy every client has its address; 0 = unlimited (default 1000)' },
  'max-connections': { env: 'HERALD_MAX_CONNECTIONS', help: 'open TCP connections before new ones get 503; 0 = unlimited (default 10000)' },
  transports: { env: 'HERALD_TRANSPORTS', help: `connection types to offer, comma-separated (default ${TRANSPORT_NAMES.join(',')})` },
  'publish-key': { env: 'HERALD_PUBLISH_KEY', secret: true, help: 'API key for POST /pub and /sign (Authorization: Bearer …); without one only loopback may publish' },
  'admin-key': { env: 'HERALD_ADMIN_KEY', secret: true, help: 'key for /metrics and /dashboard (Authorization: Bearer …, or /dashboard?key=…); without one only loopback may see them' },
  'jwt-secret': { env: 'HERALD_JWT_SECRET', secret: true, help: 'HS256 secret (32+ characters) of client tokens; setting any JWT key closes channels to tokens that grant them' },
  'jwt-public-key': { env: 'HERALD_JWT_PUBLIC_KEY', help: 'PEM file of the RSA (RS256) or P-256 (ES256) public key of client tokens' },
  jwks: { env: 'HERALD_JWKS', help: 'JSON Web Key Set file of client token keys (RS256/ES256, by kid)' },
  'jwt-issuer': { env: 'HERALD_JWT_ISSUER', help: 'client tokens must carry this iss' },
  'jwt-audience': { env: 'HERALD_JWT_AUDIENCE', help: 'client tokens must carry this aud' },
  permissions: { env: 'HERALD_PERMISSIONS', help: 'JSON file of channel rules: {"clientPublish": bool, "channels": [{"pattern", "subscribe", "publish"}]} (in a config file, also the rules themselves)' },
  engine: { env: 'HERALD_ENGINE', secret: true, help: 'memory (one process) or redis://host:port to join a cluster through Redis (default memory)' },
  'history-size': { env: 'HERALD_HISTORY_SIZE', help: 'messages kept per channel for resume and /history (default 100)' },
  'history-ttl': { env: 'HERALD_HISTORY_TTL', help: 'drop history older than this, e.g. 10m (default 0: no age limit)' },
  'memory-budget': {
    env: 'HERALD_MEMORY_BUDGET',
    help: 'bytes history and session queues may hold together, e.g. 512mb; then the oldest history goes (with gap signals) or the heaviest queues get the slow-consumer policy (default 30% of the heap limit, see --max-old-space-size)',
  },
  'drain-window': { env: 'HERALD_DRAIN_WINDOW', help: 'on SIGTERM, sessions are told to reconnect at moments spread over this window (default 3s)' },
  'shutdown-grace': { env: 'HERALD_SHUTDOWN_GRACE', help: 'on SIGTERM, exit within this long whatever is still open; above the drain window (default 10s)' },
  demo: { env: 'HERALD_DEMO', help: 'serve the demo chat at / and the ticker at /ticker: on or off (default on)' },
  'log-level': { env: 'HERALD_LOG_LEVEL', help: `one of ${LOG_LEVELS.join(', ')} (default info)` },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof SERVE_SETTINGS;
type Name = SettingName;

/** Where a setting's value came from. */
export type SettingSource = 'flag' | 'env' | 'file' | 'default';

/** One setting as `herald config --print` shows it: secrets masked, durations and sizes with units. */
export interface EffectiveSetting {
  readonly value: unknown;
  readonly source: SettingSource;
}

/** How a setting's text (as a flag gives it) becomes its value, and where the value goes. */
interface Rule {
  /** The value, or undefined to refuse `text` (trimmed unless `verbatim`); may throw naming `where` itself. */
  readonly parse: (text: string, where: string) => unknown;
  readonly expected: string;
  /** Its key in HeraldOptions (port, host, log-level and config are not options of createHerald). */
  readonly option?: keyof HeraldOptions;
  /** `herald serve`'s own default, where it has one (else createHerald's applies). */
  readonly default?: unknown;
  /** A comma-separated list: a config file may give an array. */
  readonly list?: boolean;
  /** A file path: relative to the config file's folder when given in one; shown as the path. */
  readonly path?: boolean;
  /** Taken as given, not trimmed. */
  readonly verbatim?: boolean;
  /** A config file may give the value itself as an object (checked by this). */
  readonly object?: (value: unknown, key: string) => unknown;
  /** How `herald config --print` writes the value. */
  readonly show?: 'duration' | 'size';
}

const list = (text: string) => text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
const key = (min: number) => (t: string) => (t.length >= min ? t : undefined);

const RULES: { readonly [N in Name]: Rule } = {
  config: { parse: (t) => t, expected: 'a file path', verbatim: true },
  port: { parse: (t) => parseInteger(t, 0, 65535), expected: 'a port number 0-65535', default: 8080 },
  host: { parse: (t) => t, expected: 'a host name or address', default: '127.0.0.1', verbatim: true },
  path: { option: 'paths', parse: list, expected: 'comma-separated paths', list: true },
  timeout: { option: 'timeoutMs', parse: parseDuration, expected: 'a duration such as 30s, 500ms or 30000', show: 'duration' },
  interval: { option: 'intervalMs', parse: parseDuration, expected: 'a duration', show: 'duration' },
  'max-interval': { option: 'maxIntervalMs', parse: parseDuration, expected: 'a duration', show: 'duration' },
  'allowed-origins': { option: 'allowedOrigins', parse: list, expected: 'comma-separated origins', list: true },
  'max-body': { option: 'maxBodyBytes', parse: parseSize, expected: 'a size such as 1mb, 64kb or 65536', show: 'size' },
  'max-queue': { option: 'maxQueue', parse: (t) => parseInteger(t, 1, 1e9), expected: 'a positive integer' },
  'slow-consumer': { option: 'slowConsumer', parse: (t) => (t === 'disconnect' || t === 'drop-oldest' ? t : undefined), expected: 'disconnect or drop-oldest' },
  'max-message': { option: 'maxMessageBytes', parse: parseSize, expected: 'a size such as 64kb', show: 'size' },
  'max-rate': { option: 'maxMessageRate', parse: (t) => parseInteger(t, 0, 1e9), expected: 'a number of messages per second (0 = unlimited)' },
  'max-subscriptions': { option: 'maxSubscriptions', parse: (t) => parseInteger(t, 1, 1e9), expected: 'a positive integer' },
  'max-sessions-per-ip': { option: 'maxSessionsPerAddress', parse: (t) => parseInteger(t, 0, 1e9), expected: 'a number of sessions (0 = unlimited)' },
  'max-connections': { option: 'maxConnections', parse: (t) => parseInteger(t, 0, 1e9), expected: 'a number of connections (0 = unlimited)' },
  transports: { option: 'transports', parse: parseTransports, expected: `some of ${TRANSPORT_NAMES.join(', ')}`, list: true },
  'publish-key': { option: 'publishKey', parse: key(16), expected: 'a key of at least 16 characters' },
  'admin-key': { option: 'adminKey', parse: key(16), expected: 'a key of at least 16 characters' },
  'jwt-secret': { option: 'jwtSecret', parse: key(32), expected: 'a secret of at least 32 characters' },
  'jwt-public-key': {
    option: 'jwtPublicKey',
    parse: (t) => readText(t, (text) => (text.includes('-----BEGIN PUBLIC KEY-----') ? text : undefined)),
    expected: 'a readable PEM public key file',
    path: true,
  },
  jwks: { option: 'jwks', parse: (t) => readText(t, (text) => parseJwks(text)), expected: 'a readable JSON file of {"keys": [...]}', path: true },
  'jwt-issuer': { option: 'jwtIssuer', parse: (t) => t, expected: 'text', verbatim: true },
  'jwt-audience': { option: 'jwtAudience', parse: (t) => t, expected: 'text', verbatim: true },
  permissions: {
    option: 'permissions',
    parse: (t, where) => readPermissions(t, where),
    expected: 'a JSON file of channel rules',
    path: true,
    object: (value, key) => validatePermissions(value, key),
  },
  engine: { option: 'engine', parse: parseEngine, expected: 'memory or a redis://host:port URL' },
  'history-size': { option: 'historySize', parse: (t) => parseInteger(t, 0, 1e7), expected: 'a number of messages' },
  'history-ttl': { option: 'historyTtlMs', parse: parseDuration, expected: 'a duration such as 10m', show: 'duration' },
  'memory-budget': { option: 'memoryBudgetBytes', parse: parseSize, expected: 'a size such as 512mb', show: 'size' },
  'drain-window': { option: 'drainWindowMs', parse: parseDuration, expected: 'a duration such as 3s', default: 3_000, show: 'duration' },
  'shutdown-grace': { option: 'shutdownGraceMs', parse: parseDuration, expected: 'a duration such as 10s', default: 10_000, show: 'duration' },
  demo: { option: 'demo', parse: parseSwitch, expected: 'on or off', default: true },
  'log-level': { parse: (t) => ((LOG_LEVELS as readonly string[]).includes(t) ? t : undefined), expected: `one of ${LOG_LEVELS.join(', ')}`, default: 'info' },
};

const NAMES = Object.keys(SERVE_SETTINGS) as Name[];

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
  return Object.fromEntries(NAMES.map((name) => [name, { value: showValue(name, settings[name]), source: settings[name].source }])) as Record<
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
  const options = Object.fromEntries(
    Object.entries(SERVE_SETTINGS).map(([name, setting]) => [name, { type: 'string' as const, ...('short' in setting ? { short: setting.short } : {}) }]),
  );
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', (error as Error).message, { cause: error });
  }
  const fromArgs = (name: Name): { text: string; source: 'flag' | 'env' } | undefined => {
    const flag = values[name];
    if (typeof flag === 'string') return { text: flag, source: 'flag' };
    const fromEnv = env[SERVE_SETTINGS[name].env];
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
      const where = `--${name} (${SERVE_SETTINGS[name].env})`;
      settings[name] = { source: given.source, given: given.text, value: parseText(name, given.text, where) };
    } else {
      settings[name] = fromFile ?? { source: 'default', given: undefined, value: undefined };
    }
  }

  const valueOf = (name: Name): unknown => settings[name].value ?? RULES[name].default;
  const herald: Record<string, unknown> = {};
  for (const name of NAMES) {
    const option = RULES[name].option;
    if (option !== undefined) herald[option] = valueOf(name);
  }
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
  const rule = RULES[name];
  const value = rule.parse(rule.verbatim === true ? text : text.trim(), where);
  if (value === undefined) throw refused(name, where, original);
  return value;
}

/** A config file's value: converted to a flag's text and parsed as a flag's, or (permissions) an object checked as such. */
function parseFileValue(name: Name, entry: { readonly key: string; readonly value: unknown }, file: ConfigFile): Resolved {
  const rule = RULES[name];
  const where = `${file.label}: ${entry.key}`;
  if (rule.object !== undefined && isRecord(entry.value)) {
    try {
      return { source: 'file', given: entry.value, value: rule.object(entry.value, entry.key) };
    } catch (error) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${file.label}: ${(error as Error).message}`, { cause: error });
    }
  }
  let text = fileValueText(name, entry.value, where);
  // A relative path in the file is relative to the file, wherever herald is started from.
  if (rule.path === true && text.trim() !== '' && !isAbsolute(text.trim())) text = resolve(file.dir, text.trim());
  return { source: 'file', given: text, value: parseText(name, text, where, entry.value) };
}

function refused(name: Name, where: string, got: unknown): HeraldError {
  return new HeraldError('HERALD_ERR_INVALID_OPTION', `${where}: expected ${RULES[name].expected}, got ${describe(name, got)}`);
}

function describe(name: Name, value: unknown): string {
  const setting: Setting = SERVE_SETTINGS[name];
  if (setting.secret === true) {
    if (typeof value === 'string') return `a value of ${value.length} characters`;
    return Array.isArray(value) ? 'a list' : value === null ? 'null' : `a ${typeof value === 'object' ? 'mapping' : typeof value}`;
  }
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** A config file value as the text a flag would give: numbers and booleans as written, arrays joined for lists. */
function fileValueText(name: Name, value: unknown, where: string): string {
  if (typeof value === 'string') return value;
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') return String(value);
  if (RULES[name].list === true && Array.isArray(value)) {
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
  const document = readConfigDocument(path, `--config (${SERVE_SETTINGS.config.env})`);
  if (document !== null && !isRecord(document)) {
    const got = Array.isArray(document) ? 'a list' : `a ${typeof document}`;
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${path}: expected a mapping of settings (such as port: 8080), got ${got}`);
  }
  const entries = new Map<Name, { key: string; value: unknown }>();
  for (const [key, value] of Object.entries(document ?? {})) {
    const name = Object.hasOwn(SERVE_SETTINGS, key) ? (key as Name) : CAMEL_NAMES.get(key);
    if (name === undefined) {
      const suggestion = suggest(key, NAMES.filter((known) => known !== 'config'));
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${path}: unknown setting ${JSON.stringify(key)}${suggestion === undefined ? '' : ` (did you mean ${suggestion}?)`}`);
    }
    if (name === 'config') throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${path}: ${key}: a config file cannot name another; use --config or ${SERVE_SETTINGS.config.env}`);
    const previous = entries.get(name);
    if (previous !== undefined) throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${path}: ${name} is given twice (${previous.key} and ${key})`);
    entries.set(name, { key, value });
  }
  return { label: path, dir: dirname(resolve(path)), entries };
}

/** A setting's value for `herald config --print`: the default filled in, units put back, secrets masked. */
function showValue(name: Name, setting: Resolved): unknown {
  const rule = RULES[name];
  if (setting.source === 'default') {
    const value = rule.default ?? (rule.option === undefined ? undefined : (HERALD_DEFAULTS as Partial<Record<keyof HeraldOptions, unknown>>)[rule.option]);
    if (name === 'engine') return 'memory';
    if (name === 'permissions' && isRecord(value) && Object.keys(value).length === 0) return null;
    return value === undefined ? null : show(rule, value);
  }
  if ((SERVE_SETTINGS[name] as Setting).secret === true) return name === 'engine' ? redactUrl(String(setting.value)) : '***';
  if (rule.path === true || name === 'config') return setting.given;
  return show(rule, setting.value);
}

function show(rule: Rule, value: unknown): unknown {
  if (typeof value === 'number' && rule.show === 'duration') return formatDuration(value);
  if (typeof value === 'number' && rule.show === 'size') return formatSize(value);
  return value;
}

