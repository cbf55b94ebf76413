/**
 * @module
 * `herald serve` settings from flags and environment variables. Precedence: flag, then
 * environment variable, then default. Every bad value is rejected naming the flag it came from.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { validatePermissions } from '../core/access.js';
import type { Permissions } from '../core/access.js';
import { HeraldError } from '../core/errors.js';
import type { HeraldOptions, TransportName } from './create-herald.js';
import { TRANSPORT_NAMES } from './create-herald.js';
import type { LogLevel } from './logger.js';
import type { JSONWebKeySet } from 'jose';
import { LOG_LEVELS } from './logger.js';

export interface ServeConfig {
  readonly port: number;
  readonly host: string;
  readonly logLevel: LogLevel;
  readonly herald: HeraldOptions;
}

interface Setting {
  readonly env: string;
  /** Never echoed in messages. */
  readonly secret?: boolean;
  readonly help: string;
  readonly short?: string;
}

/** Every serve flag, its environment variable and its help line. */
export const SERVE_SETTINGS = {
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
  permissions: { env: 'HERALD_PERMISSIONS', help: 'JSON file of channel rules: {"clientPublish": bool, "channels": [{"pattern", "subscribe", "publish"}]}' },
  engine: { env: 'HERALD_ENGINE', secret: true, help: 'memory (one process) or redis://host:port to join a cluster through Redis (default memory)' },
  'history-size': { env: 'HERALD_HISTORY_SIZE', help: 'messages kept per channel for resume and /history (default 100)' },
  'history-ttl': { env: 'HERALD_HISTORY_TTL', help: 'drop history older than this, e.g. 10m (default 0: no age limit)' },
  'drain-window': { env: 'HERALD_DRAIN_WINDOW', help: 'on SIGTERM, sessions are told to reconnect at moments spread over this window (default 3s)' },
  'shutdown-grace': { env: 'HERALD_SHUTDOWN_GRACE', help: 'on SIGTERM, exit within this long whatever is still open; above the drain window (default 10s)' },
  demo: { env: 'HERALD_DEMO', help: 'serve the demo chat at / and the ticker at /ticker: on or off (default on)' },
  'log-level': { env: 'HERALD_LOG_LEVEL', help: `one of ${LOG_LEVELS.join(', ')} (default info)` },
} as const satisfies Record<string, Setting>;

type Name = keyof typeof SERVE_SETTINGS;

export function resolveServeConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServeConfig {
  const options = Object.fromEntries(
    Object.entries(SERVE_SETTINGS).map(([name, setting]) => [name, { type: 'string' as const, ...('short' in setting ? { short: setting.short } : {}) }]),
  );
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', (error as Error).message, { cause: error });
  }
  const raw = (name: Name): string | undefined => {
    const flag = values[name];
    if (typeof flag === 'string') return flag;
    const fromEnv = env[SERVE_SETTINGS[name].env];
    return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
  };
  const read = <T>(name: Name, parse: (text: string) => T | undefined, expected: string): T | undefined => {
    const text = raw(name);
    if (text === undefined) return undefined;
    const value = parse(text.trim());
    if (value === undefined) {
      const setting: Setting = SERVE_SETTINGS[name];
      const got = setting.secret ? `a value of ${text.length} characters` : JSON.stringify(text);
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `--${name} (${setting.env}): expected ${expected}, got ${got}`);
    }
    return value;
  };
  const list = (text: string) => text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);

  const logLevel = read('log-level', (t) => (LOG_LEVELS as readonly string[]).includes(t) ? (t as LogLevel) : undefined, `one of ${LOG_LEVELS.join(', ')}`);
  return {
    port: read('port', (t) => parseInteger(t, 0, 65535), 'a port number 0-65535') ?? 8080,
    host: raw('host') ?? '127.0.0.1',
    logLevel: logLevel ?? 'info',
    herald: {
      paths: read('path', list, 'comma-separated paths'),
      timeoutMs: read('timeout', parseDuration, 'a duration such as 30s, 500ms or 30000'),
      intervalMs: read('interval', parseDuration, 'a duration'),
      maxIntervalMs: read('max-interval', parseDuration, 'a duration'),
      allowedOrigins: read('allowed-origins', list, 'comma-separated origins'),
      maxBodyBytes: read('max-body', parseSize, 'a size such as 1mb, 64kb or 65536'),
      maxQueue: read('max-queue', (t) => parseInteger(t, 1, 1e9), 'a positive integer'),
      slowConsumer: read('slow-consumer', (t) => (t === 'disconnect' || t === 'drop-oldest' ? t : undefined), 'disconnect or drop-oldest'),
      maxMessageBytes: read('max-message', parseSize, 'a size such as 64kb'),
      maxMessageRate: read('max-rate', (t) => parseInteger(t, 0, 1e9), 'a number of messages per second (0 = unlimited)'),
      maxSubscriptions: read('max-subscriptions', (t) => parseInteger(t, 1, 1e9), 'a positive integer'),
      maxSessionsPerAddress: read('max-sessions-per-ip', (t) => parseInteger(t, 0, 1e9), 'a number of sessions (0 = unlimited)'),
      maxConnections: read('max-connections', (t) => parseInteger(t, 0, 1e9), 'a number of connections (0 = unlimited)'),
      transports: read('transports', parseTransports, `some of ${TRANSPORT_NAMES.join(', ')}`),
      publishKey: read('publish-key', (t) => (t.length >= 16 ? t : undefined), 'a key of at least 16 characters'),
      engine: read('engine', parseEngine, 'memory or a redis://host:port URL'),
      adminKey: read('admin-key', (t) => (t.length >= 16 ? t : undefined), 'a key of at least 16 characters'),
      jwtSecret: read('jwt-secret', (t) => (t.length >= 32 ? t : undefined), 'a secret of at least 32 characters'),
      jwtPublicKey: read('jwt-public-key', (t) => readText(t, (text) => (text.includes('-----BEGIN PUBLIC KEY-----') ? text : undefined)), 'a readable PEM public key file'),
      jwks: read('jwks', (t) => readText(t, (text) => parseJwks(text)), 'a readable JSON file of {"keys": [...]}'),
      jwtIssuer: raw('jwt-issuer'),
      jwtAudience: raw('jwt-audience'),
      permissions: readPermissions(raw('permissions')),
      historySize: read('history-size', (t) => parseInteger(t, 0, 1e7), 'a number of messages'),
      historyTtlMs: read('history-ttl', parseDuration, 'a duration such as 10m'),
      drainWindowMs: read('drain-window', parseDuration, 'a duration such as 3s') ?? 3_000,
      shutdownGraceMs: read('shutdown-grace', parseDuration, 'a duration such as 10s') ?? 10_000,
      demo: read('demo', parseSwitch, 'on or off') ?? true,
    },
  };
}

/** A file's text, if it can be read and `check` accepts it. */
function readText<T>(path: string, check: (text: string) => T | undefined): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return check(text);
}

function parseJwks(text: string): JSONWebKeySet | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && Array.isArray((value as { keys?: unknown }).keys) ? (value as JSONWebKeySet) : undefined;
  } catch {
    return undefined;
  }
}

/** The permissions file, checked rule by rule so an error names the rule and key at fault. */
function readPermissions(path: string | undefined): Permissions | undefined {
  if (path === undefined) return undefined;
  const where = `--permissions (${SERVE_SETTINGS.permissions.env})`;
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

function parseEngine(text: string): string | undefined {
  if (text === 'memory') return text;
  try {
    const url = new URL(text);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '' ? text : undefined;
  } catch {
    return undefined;
  }
}

function parseSwitch(text: string): boolean | undefined {
  const value = text.toLowerCase();
  if (value === 'on' || value === 'true' || value === 'yes' || value === '1') return true;
  if (value === 'off' || value === 'false' || value === 'no' || value === '0') return false;
  return undefined;
}

function parseTransports(text: string): TransportName[] | undefined {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0 || !names.every((name) => (TRANSPORT_NAMES as readonly string[]).includes(name))) return undefined;
  return names as TransportName[];
}

function parseInteger(text: string, min: number, max: number): number | undefined {
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
