/**
 * @module
 * Every setting of Herald, once: its createHerald option, its `herald serve` flag (also its
 * config-file key) and environment variable, its default, its range and what it is for. From
 * this list come createHerald's defaults (HERALD_DEFAULTS) and checks, serve's flags, variables
 * and config file (config.ts), `herald serve --help`, `herald config --print`, and the README's
 * table of settings (a test holds the README to it).
 */
import { getHeapStatistics } from 'node:v8';
import { BAYEUX_DEFAULTS } from '../bayeux/bayeux-server.js';
import { validatePermissions } from '../core/access.js';
import { HeraldError } from '../core/errors.js';
import { HISTORY_DEFAULTS } from '../core/history-defaults.js';
import { MEMORY_IDEMPOTENCY_KEYS } from '../core/idempotency.js';
import { redactUrl } from '../core/redact.js';
import { parseAddressRange } from './client-address.js';
import {
  choice,
  count,
  duration,
  file,
  GB,
  httpUrl,
  DAY,
  HOUR,
  isRecord,
  KB,
  list,
  MB,
  MINUTE,
  onOff,
  parseEngine,
  readPermissions,
  secret,
  SECOND,
  size,
  text,
} from './config-values.js';
import type { ValueKind } from './config-values.js';
import { connectionCap } from './connection-cap.js';
import { LOCALHOST_ORIGINS } from './cors.js';
import { LOG_LEVELS } from './logger.js';
import { readJwks, readPublicKey } from './tokens.js';
import type { HeraldOptions } from './options.js';
import { parseWebhookTargets, showWebhookTargets, webhookTargetsFromFile } from './webhook-targets.js';
import { DEFAULT_WEBHOOK_EVENTS, isWebhookEvents, isWebhookTargets, WEBHOOK_EVENT_TYPES } from './webhooks.js';
import type { WebhookTarget } from './webhooks.js';

export const TRANSPORT_NAMES = ['websocket', 'long-polling', 'callback-polling', 'eventsource'] as const;
export type TransportName = (typeof TRANSPORT_NAMES)[number];

/** What the handshake offers. Faye's browser client calls a cross-origin long-poll by its own name. */
export function connectionTypes(transports: readonly TransportName[]): string[] {
  return transports.flatMap((name) => (name === 'long-polling' ? ['long-polling', 'cross-origin-long-polling'] : [name]));
}

export interface Setting {
  /** The `herald serve` flag and config-file key; none for options only code can give. */
  readonly flag?: string;
  readonly short?: string;
  /** Its environment variable (default: HERALD_ and the flag in capitals). */
  readonly env?: string;
  /** Its createHerald option; none for serve's own (port, host, log level, config file). */
  readonly option?: keyof HeraldOptions;
  readonly kind: ValueKind<any>;
  /** createHerald's default (and serve's, unless `serveDefault`); none: unset. */
  readonly default?: unknown;
  /** `herald serve`'s default where it differs from createHerald's. */
  readonly serveDefault?: unknown;
  /** How the README and --help write the default, where the value does not say it. */
  readonly defaultText?: string;
  /** Never echoed in messages. */
  readonly secret?: boolean;
  /** What it is for (Markdown: the README's table shows it; --help without the backticks). */
  readonly help: string;
}

/**
 * 30% of the heap V8 may grow to. The heap limit includes the young generation, the collector
 * needs room to work, and connections and requests in flight need theirs: measured under a flood
 * of 130 KB publishes, a `--max-old-space-size=128` process died at 50% and held at 30% (issue 15.6).
 */
export const MEMORY_BUDGET_SHARE = 0.3;

export function defaultMemoryBudget(): number {
  // Whole mebibytes, so that `herald config --print` shows it as a size one would write.
  return Math.max(1, Math.floor((getHeapStatistics().heap_size_limit * MEMORY_BUDGET_SHARE) / MB)) * MB;
}

/** Receivers, each with its own filter if it likes (webhook-targets.ts). */
const webhookTargetsKind: ValueKind<WebhookTarget[]> = {
  expected: 'http:// or https:// URLs separated by commas, each optionally followed by events=<event>,<event>…',
  expectedOption: 'a list of URLs or {url, events}',
  parse: parseWebhookTargets,
  structured: webhookTargetsFromFile,
  accepts: isWebhookTargets,
  show: showWebhookTargets,
};

const isPath = (path: string) => /^\/[\w\-./]*$/.test(path) && !path.endsWith('/');
const cap = connectionCap();

/** In the order of `herald serve --help` and the README. */
export const SETTINGS: readonly Setting[] = [
  { flag: 'config', kind: { ...text('a file path'), path: true }, help: 'JSON or YAML file of the settings below, keyed by flag name (see *Config file*); flags and variables win over it' },
  { flag: 'port', short: 'p', kind: count('a port number', 0, 65535), default: 8080, help: 'TCP port (0 picks a free one)' },
  { flag: 'host', kind: text('a host name or address'), default: '127.0.0.1', help: 'interface to bind' },
  { flag: 'path', env: 'HERALD_PATHS', option: 'paths', kind: list('comma-separated paths that start with / and do not end with it', isPath), default: ['/bayeux', '/cometd'], help: 'Bayeux endpoint paths; each serves its sub-paths too' },
  { flag: 'timeout', option: 'timeoutMs', kind: duration(10, HOUR), default: BAYEUX_DEFAULTS.timeoutMs, help: 'how long an idle `/meta/connect` (or REST long-poll) is held' },
  { flag: 'interval', option: 'intervalMs', kind: duration(0, 10 * MINUTE), default: BAYEUX_DEFAULTS.intervalMs, help: 'delay advised between connects' },
  { flag: 'max-interval', option: 'maxIntervalMs', kind: duration(10, 24 * HOUR), default: BAYEUX_DEFAULTS.maxIntervalMs, help: 'a session with no connect for this long is expired' },
  { flag: 'allowed-origins', option: 'allowedOrigins', kind: list('comma-separated origins'), default: [LOCALHOST_ORIGINS], help: 'browser origins allowed: exact origins, `localhost` (any port), or `*`; the server\'s own origin always is' },
  { flag: 'trusted-proxies', option: 'trustedProxies', kind: { ...list('comma-separated addresses or CIDR ranges (10.0.0.0/8, ::1)', (item) => parseAddressRange(item) !== undefined), accepts: (value: unknown) => Array.isArray(value) && value.every((item) => typeof item === 'string' && parseAddressRange(item) !== undefined) }, default: [], defaultText: '—', help: 'proxies (addresses or CIDR ranges, IPv4 or IPv6) whose `X-Forwarded-For` (else `Forwarded`) is believed: the client is the right-most address not in this list; used by every per-address limit, log line and presence record' },
  { flag: 'request-timeout', option: 'requestTimeoutMs', kind: duration(100, 10 * MINUTE), default: 30_000, help: 'longest a client may take to send a whole request, headers and body (408 and the connection cut beyond: a client trickling bytes cannot hold a connection); held responses are not requests and may last longer' },
  { flag: 'max-body', option: 'maxBodyBytes', kind: size(KB, 256 * MB), default: MB, help: 'largest request body or WebSocket frame (413 / close 1009 above)' },
  { flag: 'max-message', option: 'maxMessageBytes', kind: size(16, 256 * MB), default: 128 * KB, help: 'largest published message, as JSON (`413:…` / HTTP 413)' },
  { flag: 'max-batch', option: 'maxBatchMessages', kind: count('a number of messages', 1, 10_000), default: 100, help: 'messages one batch publish (`POST /pub`) may carry (413 above; the body is bounded by `--max-body`)' },
  { flag: 'idempotency-window', option: 'idempotencyWindowMs', kind: duration(SECOND, DAY), default: 5 * MINUTE, help: 'a publish carrying an idempotency key takes effect at most once within this window (cluster-wide on Redis; per node, at most `--idempotency-max-keys` keys, in memory)' },
  { flag: 'idempotency-max-keys', option: 'idempotencyMaxKeys', kind: count('a number of keys', 1, 10_000_000), default: MEMORY_IDEMPOTENCY_KEYS, help: 'idempotency keys the memory engine keeps at most (per node); past it the oldest are forgotten before their window ends, counted in `herald_idempotency_keys_forgotten_total` (Redis keeps every key for its window)' },
  { flag: 'max-rate', option: 'maxMessageRate', kind: count('a number of messages per second', 0, 1_000_000, 'unlimited'), default: 100, help: 'messages per second one Bayeux client may send, bursts of twice that (`429:…`); publishes without a session (sessionless Bayeux, REST with a client token) count per client address at the same rate (REST 429)' },
  { flag: 'max-subscriptions', option: 'maxSubscriptions', kind: count('a number of subscriptions', 1, 1_000_000), default: BAYEUX_DEFAULTS.maxSubscriptions, help: 'subscriptions per session (`403:…:too many subscriptions…`)' },
  { flag: 'max-sessions-per-ip', option: 'maxSessionsPerAddress', kind: count('a number of sessions', 0, 10_000_000, 'unlimited'), default: 1000, help: 'sessions one client address may hold (handshake denied, REST 429); behind a proxy, set `--trusted-proxies`' },
  { flag: 'max-connections', option: 'maxConnections', kind: count('a number of connections', 0, 10_000_000, 'unlimited'), default: cap.connections, defaultText: 'open-files limit less 5% (at least 64) for Redis and files', help: 'open TCP connections; new ones beyond get a 503' },
  { flag: 'max-queue', option: 'maxQueue', kind: count('a number of messages', 1, 1_000_000), default: 10_000, help: 'messages queued per session before the slow-consumer policy acts; with CometD\'s ack extension, messages sent but not yet acknowledged count too' },
  { flag: 'slow-consumer', option: 'slowConsumer', kind: choice(['disconnect', 'drop-oldest'] as const), default: 'disconnect', help: '`disconnect` (the client reconnects and resumes from history) or `drop-oldest` (with a gap signal; see below)' },
  { flag: 'write-delay', option: 'writeDelayMs', kind: duration(0, SECOND), default: 0, help: 'gather each client\'s messages for this long before writing them (e.g. `5ms`): a burst leaves in one write per socket, for less CPU at the cost of up to this much latency; 0 writes at the end of each tick' },
  { flag: 'transports', option: 'transports', kind: list(`some of ${TRANSPORT_NAMES.join(', ')}`, (name) => (TRANSPORT_NAMES as readonly string[]).includes(name)), default: TRANSPORT_NAMES, help: 'connection types offered, in order of preference (long-polling or callback-polling is required)' },
  { flag: 'publish-key', option: 'publishKey', kind: secret('a key', 16), secret: true, help: 'backends\' key for `POST /pub`, `DELETE /pub`, `POST /sign`, `/admin/…` (`Authorization: Bearer <key>`); without one only loopback clients may publish' },
  { flag: 'admin-key', option: 'adminKey', kind: secret('a key', 16), secret: true, help: 'key for `/metrics` and `/dashboard`; without one only loopback clients may see them' },
  { flag: 'inspect-addresses', option: 'inspectAddresses', kind: onOff, default: false, help: 'show each session\'s client address in `GET /admin/users/{sub}/sessions` (`on`/`off`; personal data: off by default)' },
  { flag: 'drain-window', option: 'drainWindowMs', kind: duration(0, 10 * MINUTE), default: 0, serveDefault: 3_000, help: 'on SIGTERM, sessions are told to reconnect at moments spread over this window' },
  { flag: 'shutdown-grace', option: 'shutdownGraceMs', kind: duration(0, HOUR), default: 5_000, serveDefault: 10_000, help: 'on SIGTERM, exit within this long, cutting what is still open (≥ the drain window)' },
  { flag: 'jwt-secret', option: 'jwtSecret', kind: secret('a secret', 32), secret: true, help: 'HS256 secret of client tokens; setting any JWT key closes channels to tokens that do not grant them' },
  {
    flag: 'jwt-public-key',
    option: 'jwtPublicKey',
    kind: file('a PEM file of an RSA or P-256 public key', (pem) => (readPublicKey(pem), pem), (value) => typeof value === 'string'),
    help: 'PEM file: RSA (RS256) or P-256 (ES256) public key of client tokens',
  },
  { flag: 'jwks', option: 'jwks', kind: file('a JSON file of {"keys": [...]}', readJwks, (value) => isRecord(value) && Array.isArray(value.keys)), help: 'JSON Web Key Set file (RS256/ES256 keys, chosen by `kid`)' },
  { flag: 'jwt-issuer', option: 'jwtIssuer', kind: text('text'), help: 'client tokens must carry this `iss`' },
  { flag: 'jwt-audience', option: 'jwtAudience', kind: text('text'), help: 'client tokens must carry this `aud`' },
  {
    flag: 'permissions',
    option: 'permissions',
    kind: {
      expected: 'a JSON file of channel rules',
      parse: (t, where) => readPermissions(t, where),
      accepts: (value) => isRecord(value),
      show: (value) => (isRecord(value) && Object.keys(value).length === 0 ? null : value),
      path: true,
      object: (value, key) => validatePermissions(value, key),
    },
    default: {},
    help: 'JSON file of channel rules (see *Who may subscribe and publish*); in a config file, the rules themselves too',
  },
  { flag: 'connect-hook', option: 'connectHook', kind: httpUrl('an http:// or https:// URL'), secret: true, help: 'backend URL Herald POSTs each Bayeux handshake to; its answer allows (with `sub`, `info`, `channels` to join) or denies it (see *Backend decision hooks*)' },
  { flag: 'subscribe-hook', option: 'subscribeHook', kind: httpUrl('an http:// or https:// URL'), secret: true, help: 'backend URL asked about subscriptions to channels whose rule says `"subscribe": "hook"`' },
  { flag: 'publish-hook', option: 'publishHook', kind: httpUrl('an http:// or https:// URL'), secret: true, help: 'backend URL asked about client publishes on channels whose rule says `"publish": "hook"`; it may replace the data' },
  { flag: 'hook-secret', option: 'hookSecret', kind: secret('a secret', 16), secret: true, help: 'sent to the hooks as `Authorization: Bearer <secret>`, so the backend knows the call is Herald\'s' },
  { flag: 'hook-timeout', option: 'hookTimeoutMs', kind: duration(10, 30 * SECOND), default: 2_000, help: 'a hook that has not answered within this long (waiting for a slot included) refuses, as `503` / `hook_unavailable`' },
  { flag: 'hook-concurrency', option: 'hookConcurrency', kind: count('a number of calls', 1, 10_000), default: 64, help: 'hook calls in flight at once; as many more wait, and calls beyond those are refused at once (`hook_unavailable`), as are those of one client address beyond a quarter of the whole' },
  {
    flag: 'engine',
    option: 'engine',
    kind: { expected: 'memory or a redis://host:port URL', parse: parseEngine, accepts: (value) => isRecord(value) || (typeof value === 'string' && parseEngine(value) !== undefined), show: (value: unknown) => (typeof value === 'string' ? redactUrl(value) : 'an Engine') },
    default: 'memory',
    secret: true,
    help: '`memory` (one process) or `redis://[user:pass@]host:port[/db]` to join a cluster (see below)',
  },
  { flag: 'presence-grace', option: 'presenceGraceMs', kind: duration(0, HOUR), default: 0, defaultText: '`--max-interval` + 5 s', help: 'a member of a channel with join/leave events (rule `"presence": "events"`) leaves only after being away this long: a reconnect, a move to another node or a tab handover within it is not a leave and a join (0: `--max-interval` + 5 s)' },
  { flag: 'presence-max-members', option: 'presenceMaxMembers', kind: count('a number of members', 1, 1_000_000), default: 100, help: 'above this many members, a channel\'s subscribers get `count` events (users, connections) every `--presence-sweep` instead of joins and leaves' },
  { flag: 'presence-sweep', option: 'presenceSweepMs', kind: duration(100, 10 * MINUTE), default: 5_000, help: 'how often a node reads again the presence of the channels with events it follows: members of a node that died are noticed, crowded channels counted' },
  { flag: 'webhook-url', option: 'webhooks', kind: webhookTargetsKind, default: [], defaultText: '—', secret: true, help: 'backends sent signed events (see *Webhooks*): URLs separated by commas, each may be followed by its own filter, `https://app/hook events=user.online,user.offline`; in a config file also a list of `{url, events}`; needs `--webhook-secret`' },
  { flag: 'webhook-events', option: 'webhookEvents', kind: { ...list(`comma-separated events (${WEBHOOK_EVENT_TYPES.join(', ')})`, (type) => isWebhookEvents([type])), accepts: isWebhookEvents }, defaultText: DEFAULT_WEBHOOK_EVENTS.join(','), help: 'the events sent to a `--webhook-url` without `events=` of its own; `subscribe`, `unsubscribe` and `publish` are sent only when named' },
  { flag: 'webhook-secret', option: 'webhookSecret', kind: secret('a secret', 16), secret: true, help: 'signs every webhook request: `Herald-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`' },
  { flag: 'webhook-max-pending', option: 'webhookMaxPending', kind: count('a number of events', 1, 10_000_000), default: 10_000, help: 'webhook events kept at most (cluster-wide, in the outbox); a receiver further behind loses the oldest it had not taken (counted, logged)' },
  { flag: 'webhook-attempts', option: 'webhookAttempts', kind: count('a number of attempts', 1, 100), default: 8, help: 'attempts per webhook request (a failure, a timeout of 10 s or a non-2xx answer fails one) before its events are dropped' },
  { flag: 'webhook-retry', option: 'webhookRetryMs', kind: duration(10, 10 * MINUTE), default: 1_000, help: 'wait before a webhook\'s first retry; each next one doubles (at most 5 min), with jitter' },
  { flag: 'webhook-batch-wait', option: 'webhookBatchWaitMs', kind: duration(0, 10 * SECOND), default: 50, help: 'how long the sender, woken by a webhook event, waits before sending it, so that events fired together go in one request (at most 100 events); 0: at once' },
  { flag: 'history-size', option: 'historySize', kind: count('a number of messages', 0, 1_000_000), default: HISTORY_DEFAULTS.historySize, help: 'messages kept per channel for resume and `/history` (engines built from a name or URL)' },
  { flag: 'history-ttl', option: 'historyTtlMs', kind: duration(0, 7 * DAY), default: HISTORY_DEFAULTS.historyTtlMs, help: 'drop history older than this (0: no age limit)' },
  {
    flag: 'memory-budget',
    option: 'memoryBudgetBytes',
    kind: size(MB, 1024 * GB),
    default: defaultMemoryBudget(),
    defaultText: '30% of the heap limit',
    help: 'bytes history (memory engine) and session queues may hold together; beyond it the oldest history goes (with gap signals) or the heaviest queues get the slow-consumer policy (see below)',
  },
  { flag: 'demo', option: 'demo', kind: onOff, default: false, serveDefault: true, help: 'serve the demo chat at `/` and the ticker at `/ticker` (`on`/`off`); its rooms `/chat/**` get join/leave events (a rule appended after yours)' },
  { flag: 'log-level', kind: choice(LOG_LEVELS), default: 'info', help: `${LOG_LEVELS.join(', ')} (JSON lines on stderr)` },
  // Options of createHerald only.
  { option: 'maxSessionsPerBrowser', kind: count('a number of long-polls (-1 = unlimited)', -1, 1000), default: BAYEUX_DEFAULTS.maxSessionsPerBrowser, help: 'long-polls one browser may hold at once; -1 = unlimited' },
  { option: 'multiSessionIntervalMs', kind: duration(0, 10 * MINUTE), default: BAYEUX_DEFAULTS.multiSessionIntervalMs, help: 'poll interval advised to a browser\'s extra sessions' },
  { option: 'allowPublishWithoutSession', kind: { ...onOff, expected: 'true or false' }, default: BAYEUX_DEFAULTS.allowPublishWithoutSession, help: 'accept Bayeux publishes that carry no clientId' },
  { option: 'cookieAttributes', kind: text('text'), default: 'Path=/; HttpOnly; SameSite=Lax', help: 'attributes of the `BAYEUX_BROWSER` cookie' },
  { option: 'pingIntervalMs', kind: duration(10, 10 * MINUTE), default: 25_000, help: 'WebSocket ping period' },
  { option: 'heartbeatMs', kind: duration(10, 10 * MINUTE), default: 15_000, help: 'period of event-stream keep-alive comments' },
  { option: 'maxBufferedBytes', kind: size(KB, GB), default: 4 * MB, help: 'unsent bytes of a WebSocket or stream before it is closed as a slow consumer' },
  { option: 'clientScript', kind: { ...onOff, expected: 'true or false' }, default: true, help: 'serve the browser client at `/herald.js`' },
];

/** A setting's environment variable. */
export function envOf(setting: Setting): string | undefined {
  return setting.env ?? (setting.flag === undefined ? undefined : `HERALD_${setting.flag.toUpperCase().replace(/-/g, '_')}`);
}

/** `herald serve`'s default of a setting as the README and --help write it. */
export function defaultText(setting: Setting): string {
  if (setting.defaultText !== undefined) return setting.defaultText;
  const value = setting.serveDefault ?? setting.default;
  if (value === undefined) return '—';
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  const shown = setting.kind.show(value);
  if (shown === null) return '—';
  return Array.isArray(shown) ? shown.join(',') : String(shown);
}

/** createHerald's defaults, from the list. */
export const HERALD_DEFAULTS = Object.freeze(
  Object.fromEntries(SETTINGS.filter((s) => s.option !== undefined && s.option !== 'engine' && s.default !== undefined).map((s) => [s.option, s.default])),
) as unknown as Readonly<Settings>;

/** How `connectionCap` came to the default of maxConnections, for the start line. */
export const CONNECTION_CAP = cap;

/** Options without a default: secrets, and those whose absence means something. */
type Unset = 'publishKey' | 'adminKey' | 'jwtSecret' | 'jwtPublicKey' | 'jwks' | 'jwtIssuer' | 'jwtAudience' | 'connectHook' | 'subscribeHook' | 'publishHook' | 'hookSecret' | 'webhookSecret' | 'webhookEvents';
/** createHerald's options with its defaults filled in. */
export type Settings = Required<Omit<HeraldOptions, 'engine' | 'logger' | 'clock' | Unset>> & Pick<HeraldOptions, Unset>;

/** Refuses, naming it, any option out of its range or of the wrong kind, and options that contradict each other. */
export function validate(config: Settings): void {
  for (const setting of SETTINGS) {
    if (setting.option === undefined || setting.option === 'engine') continue;
    const value = (config as Record<string, unknown>)[setting.option];
    if (value === undefined && setting.default === undefined) continue;
    if (!setting.kind.accepts(value)) {
      const got = setting.secret === true ? `a ${typeof value}` : Array.isArray(value) ? JSON.stringify(value) : String(value);
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${setting.option} must be ${setting.kind.expectedOption ?? setting.kind.expected}, got ${got}`);
    }
  }
  if (config.drainWindowMs > config.shutdownGraceMs) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `drainWindowMs (${config.drainWindowMs}) must not exceed shutdownGraceMs (${config.shutdownGraceMs})`);
  }
  try {
    validatePermissions(config.permissions);
  } catch (error) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', (error as Error).message, { cause: error });
  }
  for (const rule of config.permissions.channels ?? []) {
    for (const [action, option, flag] of [['subscribe', 'subscribeHook', 'subscribe-hook'], ['publish', 'publishHook', 'publish-hook']] as const) {
      if (rule[action] === 'hook' && config[option] === undefined) {
        throw new HeraldError('HERALD_ERR_INVALID_OPTION', `the rule for ${rule.pattern} says "${action}": "hook", but no ${option} (--${flag}) is set`);
      }
    }
  }
  if (config.webhooks.length > 0 && config.webhookSecret === undefined) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', 'webhooks are set but no webhookSecret (--webhook-secret) to sign them with');
  }
  if (!config.transports.includes('long-polling') && !config.transports.includes('callback-polling')) {
    // Every Bayeux client handshakes over one of these (the spec makes long-polling mandatory).
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', 'transports must include long-polling or callback-polling');
  }
}
