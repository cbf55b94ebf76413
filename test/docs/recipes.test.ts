/**
 * The deploy recipes in docs/deploy/ are real: nginx.conf passes `nginx -t` and then serves, as
 * written, in front of two `herald serve` nodes started from herald@.service with
 * herald.env.example on a real Redis (long-polling, WebSocket, SSE, TLS, the redirect, the drain);
 * the systemd units, the Dockerfile and docker-compose.yml name only real flags, variables and
 * files. `scripts/test.sh` installs nginx when it is missing.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { delimiter, join, posix, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { resolveServeConfig, SERVE_SETTINGS } from '../../src/server/config.js';
import type { ServeConfig } from '../../src/server/config.js';
import { HERALD_DEFAULTS } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { freePort, startRedis } from '../helpers/redis.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
const DEPLOY = join(ROOT, 'docs', 'deploy');
const CERT = join(ROOT, 'test', 'fixtures', 'tls-cert.pem');
const KEY = join(ROOT, 'test', 'fixtures', 'tls-key.pem');
const SERVER_NAME = 'herald.example.com';
const ENV_NAMES = new Set<string>(Object.values(SERVE_SETTINGS).map((s) => s.env));

type Hookable = { after(fn: () => unknown): void };

const deployFile = (name: string) => readFileSync(join(DEPLOY, name), 'utf8');

/** What follows `serve` in a command line: the flags of `herald serve`. */
function serveArgs(argv: readonly string[], where: string): string[] {
  const at = argv.indexOf('serve');
  assert.ok(at > 0 && argv[at - 1]!.endsWith('dist/cli/main.js'), `${where}: runs dist/cli/main.js serve: ${argv.join(' ')}`);
  return argv.slice(at + 1);
}

/** How long `herald serve` so configured may take to exit after SIGTERM. */
function shutdownGraceMs(config: ServeConfig): number {
  return config.herald.shutdownGraceMs ?? HERALD_DEFAULTS.shutdownGraceMs;
}

function packageBin(): string {
  const bin = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin.herald!;
  return posix.normalize(bin);
}

// ---------------------------------------------------------------- herald.env.example

interface EnvFile {
  /** NAME=value lines in force. */
  readonly active: Record<string, string>;
  /** `#NAME=value` lines: settings shown for the operator to turn on. */
  readonly commented: Record<string, string>;
}

function parseEnvFile(text: string): EnvFile {
  const active: Record<string, string> = {};
  const commented: Record<string, string> = {};
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    const off = /^#([A-Z][A-Z0-9_]*)=(\S*)$/.exec(line);
    if (off !== null) {
      commented[off[1]!] = off[2]!;
      return;
    }
    if (line.startsWith('#')) return;
    // systemd's EnvironmentFile and compose's env_file read this alike only without quotes or spaces.
    const on = /^([A-Z][A-Z0-9_]*)=(\S*)$/.exec(line);
    assert.ok(on !== null, `herald.env.example line ${index + 1} is not NAME=value without quotes or spaces: ${JSON.stringify(line)}`);
    active[on[1]!] = on[2]!;
  });
  return { active, commented };
}

/** The example as an operator fills it in: every CHANGE-ME replaced by a fresh secret. */
function filledEnv(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([name, value]) => [name, value === 'CHANGE-ME' ? randomBytes(32).toString('hex') : value]));
}

// ---------------------------------------------------------------- systemd units

type Unit = Map<string, Map<string, string[]>>;

function parseUnit(text: string, name: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  text.split('\n').forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) return;
    assert.ok(!trimmed.endsWith('\\'), `${name}:${index + 1}: no continuation lines, so that this parse is exact`);
    const header = /^\[(\w+)\]$/.exec(trimmed);
    if (header !== null) {
      section = new Map();
      unit.set(header[1]!, section);
      return;
    }
    const entry = /^([A-Za-z]+)=(.*)$/.exec(trimmed);
    assert.ok(entry !== null && section !== undefined, `${name}:${index + 1}: not Key=value in a section: ${JSON.stringify(line)}`);
    section.set(entry[1]!, [...(section.get(entry[1]!) ?? []), entry[2]!]);
  });
  return unit;
}

function unitValue(unit: Unit, section: string, key: string): string | undefined {
  return unit.get(section)?.get(key)?.at(-1);
}

/** A systemd time span such as 30s, 1min 30s, 500ms or 30 (seconds), in milliseconds. */
function timeSpanMs(text: string): number {
  const units: Record<string, number> = { ms: 1, msec: 1, s: 1000, sec: 1000, seconds: 1000, m: 60_000, min: 60_000, minutes: 60_000, h: 3_600_000 };
  let total = 0;
  for (const part of text.trim().split(/\s+/)) {
    const match = /^(\d+)([a-z]*)$/.exec(part);
    assert.ok(match !== null && (match[2] === '' || match[2]! in units), `a time span: ${text}`);
    total += Number(match[1]) * (match[2] === '' ? 1000 : units[match[2]!]!);
  }
  return total;
}

/** ExecStart's words, with %i as the instance; the units use no quoting, so splitting is exact. */
function execStart(unit: Unit, instance: string): string[] {
  const line = unitValue(unit, 'Service', 'ExecStart');
  assert.ok(line !== undefined, 'ExecStart is set');
  assert.ok(!/["'\\$]/.test(line), `ExecStart needs no quoting or variables: ${line}`);
  const words = line.split(/\s+/).map((word) => word.replaceAll('%i', instance));
  assert.ok(!words.some((word) => word.includes('%')), `no specifier other than %i: ${line}`);
  return words;
}

function unitEnvironment(unit: Unit): Record<string, string> {
  return Object.fromEntries((unit.get('Service')?.get('Environment') ?? []).map((entry) => {
    const [name, ...value] = entry.split('=');
    return [name!, value.join('=')];
  }));
}

// ---------------------------------------------------------------- Dockerfile

interface Instruction {
  readonly op: string;
  readonly args: string;
}

function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = '';
  for (const line of text.split('\n')) {
    if (pending === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const whole = (pending + line).trim();
    pending = '';
    const match = /^([A-Z]+)\s+(.*)$/s.exec(whole);
    assert.ok(match !== null, `Dockerfile: not an instruction: ${whole}`);
    instructions.push({ op: match[1]!, args: match[2]!.trim() });
  }
  return instructions;
}

/** An exec-form (JSON array) CMD or HEALTHCHECK CMD. */
function execForm(text: string, what: string): string[] {
  let argv: unknown;
  try {
    argv = JSON.parse(text);
  } catch {
    assert.fail(`${what} is in exec form (a JSON array, so that signals reach node): ${text}`);
  }
  assert.ok(Array.isArray(argv) && argv.every((a) => typeof a === 'string'), `${what} is an array of strings`);
  return argv as string[];
}

/** ENV lines (NAME=value, several per line) of the last stage. */
function dockerEnv(instructions: readonly Instruction[]): Record<string, string> {
  const lastFrom = instructions.map((i) => i.op).lastIndexOf('FROM');
  const env: Record<string, string> = {};
  for (const { op, args } of instructions.slice(lastFrom)) {
    if (op !== 'ENV') continue;
    for (const pair of args.split(/\s+/)) {
      const match = /^([A-Za-z_][A-Za-z0-9_]*)=(\S*)$/.exec(pair);
      assert.ok(match !== null, `ENV in NAME=value form: ${args}`);
      env[match[1]!] = match[2]!;
    }
  }
  return env;
}

// ---------------------------------------------------------------- docker-compose.yml

type Yaml = string | Yaml[] | { [key: string]: Yaml };

/**
 * The YAML subset docker-compose.yml is written in: block mappings and sequences, plain scalars,
 * and double-quoted strings and flow sequences written as JSON. Anything else fails loudly.
 */
function parseYaml(text: string): Yaml {
  const lines = text
    .split('\n')
    .map((raw, index) => ({ no: index + 1, indent: raw.length - raw.trimStart().length, text: raw.trim() }))
    .filter((line) => line.text !== '' && !line.text.startsWith('#'));
  let at = 0;
  const scalar = (value: string, no: number): Yaml => {
    if (value.startsWith('"') || value.startsWith('[')) {
      try {
        return JSON.parse(value) as Yaml;
      } catch {
        assert.fail(`docker-compose.yml:${no}: not JSON: ${value}`);
      }
    }
    assert.ok(!/^['{&*!|>]/.test(value) && !value.includes(' #'), `docker-compose.yml:${no}: outside the YAML this test reads: ${value}`);
    return value;
  };
  const block = (indent: number): Yaml => {
    if (lines[at]!.text.startsWith('- ')) {
      const list: Yaml[] = [];
      while (at < lines.length && lines[at]!.indent === indent && lines[at]!.text.startsWith('- ')) {
        list.push(scalar(lines[at]!.text.slice(2).trim(), lines[at]!.no));
        at++;
      }
      return list;
    }
    const map: Record<string, Yaml> = {};
    while (at < lines.length && lines[at]!.indent === indent) {
      const line = lines[at]!;
      const entry = /^([A-Za-z0-9_.-]+):(?:\s+(.*))?$/.exec(line.text);
      assert.ok(entry !== null, `docker-compose.yml:${line.no}: not key: value: ${line.text}`);
      at++;
      if (entry[2] !== undefined && entry[2] !== '') map[entry[1]!] = scalar(entry[2], line.no);
      else if (at < lines.length && lines[at]!.indent > indent) map[entry[1]!] = block(lines[at]!.indent);
      else map[entry[1]!] = '';
    }
    assert.ok(at >= lines.length || lines[at]!.indent < indent, `docker-compose.yml:${lines[at]?.no}: unexpected indentation`);
    return map;
  };
  const document = block(0);
  assert.equal(at, lines.length, 'docker-compose.yml read to the end');
  return document;
}

function asMap(value: Yaml | undefined, what: string): Record<string, Yaml> {
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), `${what} is a mapping`);
  return value;
}

function asList(value: Yaml | undefined, what: string): string[] {
  assert.ok(Array.isArray(value) && value.every((v) => typeof v === 'string'), `${what} is a list of strings`);
  return value as string[];
}

// ---------------------------------------------------------------- nginx

function nginxBinary(): string {
  const candidates = [process.env.NGINX, ...(process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'nginx')), '/usr/sbin/nginx'];
  for (const candidate of candidates) {
    if (candidate === undefined || candidate === '') continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* next */
    }
  }
  assert.fail('nginx is not installed: scripts/test.sh installs it with apt-get (or set NGINX=/path/to/nginx)');
}

interface LivePorts {
  readonly http: number;
  readonly https: number;
  /** The node ports to put in place of the upstream's, in order. */
  readonly upstream: readonly number[];
}

/**
 * docs/deploy/nginx.conf in a throwaway prefix: the fixture certificate for the placeholder one,
 * logs and temporary files in the prefix. With `live`, loopback ports for 80, 443 and the nodes
 * (and no IPv6 listeners). Nothing else of it changes.
 */
function nginxPrefix(t: Hookable, live?: LivePorts): string {
  const dir = mkdtempSync(join(tmpdir(), 'herald-nginx-'));
  onCleanup(t, () => rmSync(dir, { recursive: true, force: true }));
  // nginx's workers run as www-data when the master is root: they must reach the prefix.
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'logs'));
  let conf = deployFile('nginx.conf');
  const replace = (pattern: RegExp, by: string | ((...match: string[]) => string), what: string) => {
    assert.ok(pattern.test(conf), `nginx.conf has ${what} (${pattern})`);
    conf = conf.replace(new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`), by as string);
  };
  replace(/\/etc\/ssl\/herald\/fullchain\.pem/, CERT, 'the placeholder certificate');
  replace(/\/etc\/ssl\/herald\/privkey\.pem/, KEY, 'the placeholder key');
  replace(/\/var\/log\/nginx\//, `${dir}/logs/`, 'logs in /var/log/nginx');
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `    ${kind}_temp_path ${dir}/${kind}_temp;`).join('\n');
  replace(/^http \{$/m, `http {\n${temp}`, 'an http block');
  if (live !== undefined) {
    replace(/^[ \t]*listen \[::\]:.*\n/m, '', 'IPv6 listeners');
    replace(/listen 80\b/, `listen 127.0.0.1:${live.http}`, 'port 80');
    replace(/listen 443\b/, `listen 127.0.0.1:${live.https}`, 'port 443');
    let next = 0;
    replace(/(\n\s*server 127\.0\.0\.1:)(\d+)/, (_, head: string) => `${head}${live.upstream[next++]}`, 'upstream servers on 127.0.0.1');
    assert.equal(next, live.upstream.length, 'one node per upstream server');
  }
  // Whatever nginx would open at start (logs, pid, temporary files) is in the prefix now.
  const outside = conf.split('\n').filter((line) => !line.trim().startsWith('#') && /(^|\s)\/(var|run|etc|tmp)\//.test(line.replace(dir, '').replace(ROOT, '')));
  assert.deepEqual(outside, [], 'no path outside the prefix is left');
  writeFileSync(join(dir, 'nginx.conf'), conf);
  return dir;
}

/** `-e` and `-g` keep nginx's own start-up log, pid and lock file in the prefix too. */
function nginxArgs(dir: string, extra = ''): string[] {
  return ['-e', join(dir, 'logs', 'startup.log'), '-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-g', `pid ${dir}/nginx.pid; lock_file ${dir}/nginx.lock; ${extra}`];
}

function upstreamPorts(): number[] {
  const upstream = /upstream herald \{([^}]*)\}/.exec(deployFile('nginx.conf'));
  assert.ok(upstream !== null, 'nginx.conf has an upstream herald');
  return [...upstream[1]!.matchAll(/^\s*server 127\.0\.0\.1:(\d+)/gm)].map((m) => Number(m[1]));
}

// ---------------------------------------------------------------- processes

/** Exits or fails the test after `ms`: never a wait without a ceiling. */
async function exited(child: ChildProcess, what: string, ms = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  const [code, signal] = (await withTimeout(`${what} to exit`, once(child, 'exit'), ms)) as [number | null, NodeJS.Signals | null];
  return { code, signal };
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** The pids of a process's children (nginx's workers), read from /proc. */
function childPids(pid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) pids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return pids;
}

// ---------------------------------------------------------------- HTTP through nginx

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

interface Call {
  readonly method?: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** Plain HTTP to this port instead of HTTPS to nginx. */
  readonly plainPort?: number;
}

/**
 * TLS to nginx as a browser of https://herald.example.com would: SNI (and Host) name it. The
 * fixture certificate is trusted but made for localhost, so its name is not checked.
 */
function tlsOptions() {
  return { servername: SERVER_NAME, ca: readFileSync(CERT), checkServerIdentity: () => undefined };
}

function call(httpsPort: number, req: Call): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers = { Host: SERVER_NAME, ...req.headers };
    const options = { method: req.method ?? 'GET', path: req.path, headers, agent: false as const };
    const done = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const r = req.plainPort === undefined
      ? httpsRequest({ host: '127.0.0.1', port: httpsPort, ...tlsOptions(), ...options }, done)
      : httpRequest({ host: '127.0.0.1', port: req.plainPort, ...options }, done);
    r.on('error', reject);
    r.setTimeout(10_000, () => r.destroy(new Error(`no answer to ${req.method ?? 'GET'} ${req.path} within 10 s`)));
    r.end(req.body);
  });
}

function json(reply: Reply): any {
  try {
    return JSON.parse(reply.text);
  } catch {
    assert.fail(`not JSON (${reply.status}): ${reply.text.slice(0, 300)}`);
  }
}

/** A response left open (an event stream): what it has sent so far. */
async function openStream(t: Hookable, httpsPort: number, path: string, headers: Record<string, string>) {
  const req = httpsRequest({ host: '127.0.0.1', port: httpsPort, ...tlsOptions(), path, headers: { Host: SERVER_NAME, ...headers }, agent: false });
  req.on('error', () => {});
  req.end();
  onCleanup(t, () => req.destroy());
  const [res] = (await withTimeout(`the headers of ${path}`, once(req, 'response'))) as [IncomingMessage];
  let text = '';
  res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  res.on('error', () => {});
  return { res, text: () => text };
}

// ================================================================ the tests

test('nginx.conf passes nginx -t, writing nothing outside its prefix', (t) => {
  const nginx = nginxBinary();
  const dir = nginxPrefix(t);
  const result = spawnSync(nginx, ['-t', ...nginxArgs(dir)], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(result.status, 0, `nginx -t failed:\n${result.stderr}`);
  assert.match(result.stderr, /syntax is ok/);
  assert.match(result.stderr, /test is successful/);
  // Tolerated: `user` when not root, and on nginx 1.25.1 or newer the `listen … http2` form,
  // which the recipe keeps because the `http2 on;` that replaces it is unknown to Debian 12's 1.22.
  const tolerated = [/"user" directive makes sense only if the master process runs with super-user/, /the "listen \.\.\. http2" directive is deprecated/];
  const warnings = result.stderr.split('\n').filter((line) => /\[(warn|emerg|alert|crit|error)\]/.test(line) && !tolerated.some((pattern) => pattern.test(line)));
  assert.deepEqual(warnings, [], 'no warnings');
});

test('nginx.conf holds what Herald needs of a proxy', () => {
  const conf = deployFile('nginx.conf');
  const directives = conf.split('\n').filter((line) => !line.trim().startsWith('#')).join('\n');
  for (const needed of [
    /hash \$remote_addr consistent;/,
    /map \$http_upgrade \$connection_upgrade/,
    /proxy_set_header Upgrade \$http_upgrade;/,
    /proxy_set_header Connection \$connection_upgrade;/,
    /proxy_http_version 1\.1;/,
    /proxy_buffering off;/,
    /proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;/,
    /proxy_set_header X-Forwarded-Proto \$scheme;/,
    /proxy_cookie_flags BAYEUX_BROWSER secure;/,
    /Strict-Transport-Security/,
    /return 301 https:\/\/\$host\$request_uri;/,
  ]) {
    assert.match(directives, needed);
  }
  // Quiet periods: a held connect (--timeout), SSE heartbeats, WebSocket pings. nginx must outwait them all.
  const quiet = Math.max(HERALD_DEFAULTS.timeoutMs, HERALD_DEFAULTS.heartbeatMs, HERALD_DEFAULTS.pingIntervalMs);
  for (const timeout of ['proxy_read_timeout', 'proxy_send_timeout']) {
    const value = new RegExp(`${timeout} (\\d+)s;`).exec(directives);
    assert.ok(value !== null, `${timeout} is set in seconds`);
    assert.ok(Number(value[1]) * 1000 >= quiet * 2, `${timeout} ${value[1]}s is comfortably above ${quiet} ms`);
  }
  // Each of Herald's public paths has a location that proxies it; nothing else is proxied.
  const locations = [...directives.matchAll(/location (=\s*)?(\S+) \{([^}]*)\}/g)].map((m) => ({ path: m[2]!, body: m[3]! }));
  const proxied = locations.filter((l) => /proxy_pass http:\/\/herald;/.test(l.body)).map((l) => l.path);
  for (const path of ['/bayeux', '/cometd', '/sub/', '/pub/', '/history/', '/presence/', '/sign', '/health', '/herald.js']) {
    assert.ok(proxied.includes(path), `location ${path} proxies to Herald`);
  }
  assert.ok(!/proxy_set_header/.test(locations.map((l) => l.body).join('')), 'no location drops the inherited proxy headers by setting its own');
  assert.equal(upstreamPorts().length >= 2, true, 'two nodes or more upstream');
});

test('herald.env.example names real settings, and a copy not filled in does not start', () => {
  const env = parseEnvFile(deployFile('herald.env.example'));
  for (const name of [...Object.keys(env.active), ...Object.keys(env.commented)]) {
    assert.ok(ENV_NAMES.has(name), `${name} is a herald serve setting (SERVE_SETTINGS)`);
  }
  for (const name of ['HERALD_PUBLISH_KEY', 'HERALD_ENGINE']) assert.ok(name in env.active, `${name} is set`);
  assert.ok('HERALD_JWT_SECRET' in env.active || 'HERALD_JWT_SECRET' in env.commented, 'HERALD_JWT_SECRET is shown');
  // As it is, the placeholders are refused, naming the setting.
  assert.throws(() => resolveServeConfig([], env.active), /HERALD_PUBLISH_KEY/);
  // Filled in, with every commented setting turned on too, it is a valid configuration.
  const config = resolveServeConfig([], filledEnv({ ...env.active, ...env.commented }));
  assert.ok(config.herald.publishKey !== undefined && config.herald.jwtSecret !== undefined);
  assert.match(String(config.herald.engine), /^redis:\/\//);
});

for (const file of ['herald.service', 'herald@.service'] as const) {
  test(`${file}: real flags, a stop timeout above the drain, hardening`, async () => {
    const unit = parseUnit(deployFile(file), file);
    const service = (key: string) => unitValue(unit, 'Service', key);
    const argv = execStart(unit, '8081');
    assert.deepEqual(argv.slice(0, 2), ['/usr/bin/env', 'node'], 'node found on the PATH systemd gives');
    const workingDirectory = service('WorkingDirectory');
    assert.ok(workingDirectory !== undefined, 'WorkingDirectory is set');
    assert.equal(argv[2], posix.join(workingDirectory, packageBin()), "the script is package.json's bin, in WorkingDirectory");

    assert.equal(service('EnvironmentFile'), '/etc/herald/herald.env');
    const env = { ...unitEnvironment(unit), ...filledEnv(parseEnvFile(deployFile('herald.env.example')).active) };
    const config = resolveServeConfig(serveArgs(argv, file), env);
    assert.equal(config.host, '127.0.0.1', 'behind the proxy only');
    assert.equal(config.port, file === 'herald.service' ? 8080 : 8081);
    assert.equal(config.herald.demo, false);
    assert.equal(config.herald.maxSessionsPerAddress, 0, 'the per-address limit is the proxy’s: every client comes from its address');

    assert.equal(service('KillSignal'), 'SIGTERM');
    const stopMs = timeSpanMs(service('TimeoutStopSec') ?? '90s');
    const graceMs = shutdownGraceMs(config);
    assert.ok(stopMs >= graceMs + 10_000, `TimeoutStopSec (${stopMs} ms) leaves the drain (at most ${graceMs} ms) room to finish`);
    assert.equal(service('Restart'), 'on-failure');
    assert.equal(service('RestartPreventExitStatus'), '2', 'a bad setting (exit 2) is not restarted in a loop');
    assert.equal(service('LimitNOFILE'), '1048576');
    for (const [key, value] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['PrivateTmp', 'yes'], ['DynamicUser', 'yes'], ['ProtectHome', 'yes']] as const) {
      assert.equal(service(key), value, `${key}=${value}`);
    }
    assert.notEqual(service('MemoryDenyWriteExecute'), 'yes', 'V8 needs writable executable memory');
    assert.equal(unitValue(unit, 'Install', 'WantedBy'), 'multi-user.target');
  });
}

test('herald.service and herald@.service differ only in the port', () => {
  const services = ['herald.service', 'herald@.service'].map((file) => {
    const service = parseUnit(deployFile(file), file).get('Service')!;
    return [...service].map(([key, values]) => `${key}=${values.join('\n')}`.replace('--port %i', '--port 8080'));
  });
  assert.deepEqual(services[1], services[0]);
});

test('systemd-analyze verifies the units and rates their exposure OK', async (t) => {
  const which = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (which.error !== undefined) {
    t.skip('systemd-analyze is not installed: the parse checks above stand alone');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'herald-units-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'herald.service'), deployFile('herald.service'));
  writeFileSync(join(dir, 'herald@8081.service'), deployFile('herald@.service'));
  for (const unit of ['herald.service', 'herald@8081.service']) {
    const verify = spawnSync('systemd-analyze', ['verify', join(dir, unit)], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(verify.status, 0, `systemd-analyze verify ${unit}:\n${verify.stderr}`);
    assert.equal(`${verify.stdout}${verify.stderr}`.trim(), '', `systemd-analyze verify ${unit} has nothing to say`);
    const security = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', join(dir, unit)], { encoding: 'utf8', timeout: 20_000 });
    const level = /Overall exposure level for \S+: (\d+(?:\.\d+)?) (\w+)/.exec(security.stdout);
    if (level === null) {
      t.diagnostic(`systemd-analyze security --offline gave no rating: ${security.stderr.trim()}`);
      continue;
    }
    assert.ok(Number(level[1]) <= 2, `exposure of ${unit} is ${level[1]} ${level[2]} (at most 2)`);
  }
});

test('Dockerfile: node:20-slim, COPY sources exist, CMD flags parse, HEALTHCHECK asks /health', () => {
  const instructions = parseDockerfile(deployFile('Dockerfile'));
  const of = (op: string) => instructions.filter((i) => i.op === op);
  const froms = of('FROM').map((i) => i.args);
  assert.ok(froms.length >= 2 && froms.every((f) => f.startsWith('node:20-slim')), `multi-stage on node:20-slim: ${froms.join(', ')}`);
  const stages = froms.map((f) => /\bAS\s+(\S+)/i.exec(f)?.[1]).filter((s) => s !== undefined);

  // Files copied from the build context (the repository root) are there, and not ignored.
  const ignored = deployFile('Dockerfile.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const copied: string[] = [];
  for (const { args } of of('COPY')) {
    const words = args.split(/\s+/);
    const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
    const sources = words.filter((w) => !w.startsWith('--')).slice(0, -1);
    assert.ok(sources.length > 0, `COPY ${args} names a source`);
    if (from !== undefined) {
      assert.ok(stages.includes(from), `COPY --from=${from} names a stage`);
      continue;
    }
    for (const source of sources) {
      assert.ok(existsSync(join(ROOT, source)), `COPY ${source}: exists in the repository`);
      assert.ok(!ignored.some((pattern) => source === pattern || source.startsWith(`${pattern}/`)), `COPY ${source} is not in Dockerfile.dockerignore`);
      copied.push(posix.normalize(source));
    }
  }
  // The build stage has what `npm ci` and `npm run build` read.
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const buildReads = ['package.json', 'package-lock.json', 'src'];
  for (const [, config] of manifest.scripts.build!.matchAll(/tsc -p (\S+)/g)) {
    for (let file: string | undefined = config; file !== undefined; ) {
      buildReads.push(file);
      const extended = (JSON.parse(readFileSync(join(ROOT, file), 'utf8')) as { extends?: string }).extends;
      file = extended === undefined ? undefined : posix.normalize(extended);
    }
  }
  for (const [, script] of manifest.scripts.build!.matchAll(/node (\S+\.m?js)/g)) buildReads.push(script!);
  for (const file of buildReads) assert.ok(copied.includes(file), `the image build copies ${file}`);
  assert.ok(of('RUN').some((i) => /npm ci\b/.test(i.args)) && of('RUN').some((i) => /npm run build/.test(i.args) && /npm prune --omit=dev/.test(i.args)), 'npm ci, npm run build, npm prune --omit=dev');

  const user = of('USER').at(-1)?.args;
  assert.ok(user !== undefined && user !== 'root' && user !== '0', 'runs as a user other than root');
  const env = dockerEnv(instructions);
  const cmd = execForm(of('CMD').at(-1)!.args, 'CMD');
  const workdir = of('WORKDIR').at(-1)!.args;
  assert.equal(cmd[0], 'node');
  assert.equal(posix.normalize(cmd[1]!), packageBin(), "CMD runs package.json's bin");
  assert.ok(!posix.isAbsolute(cmd[1]!) || cmd[1]!.startsWith(workdir));
  const config = resolveServeConfig(serveArgs(cmd, 'CMD'), env);
  assert.equal(config.host, '0.0.0.0', 'reachable from outside the container');
  assert.equal(config.herald.demo, false);
  assert.deepEqual(of('EXPOSE').map((i) => i.args), [String(config.port)], 'EXPOSE is the port Herald listens on');

  // docker stop's default 10 s may be shorter than the drain: the documented run gives more.
  for (const [where, text] of [['Dockerfile', deployFile('Dockerfile')], ['docs/deploy.md', readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8')]] as const) {
    const run = /docker run .*--stop-timeout (\d+)/.exec(text);
    assert.ok(run !== null && Number(run[1]) * 1000 >= shutdownGraceMs(config) + 10_000, `${where}: docker run gives the drain time (--stop-timeout)`);
  }

  const healthcheck = of('HEALTHCHECK').at(-1)?.args;
  assert.ok(healthcheck !== undefined, 'HEALTHCHECK is set');
  const probe = execForm(healthcheck.slice(healthcheck.indexOf('CMD') + 3).trim(), 'HEALTHCHECK CMD');
  assert.equal(probe[0], 'node', 'the slim image has node, not curl');
  assert.match(probe.join(' '), /\/health/);
});

test('docker-compose.yml: Redis, nodes on the upstream ports with real flags, nginx with nginx.conf', () => {
  const compose = asMap(parseYaml(deployFile('docker-compose.yml')), 'the file');
  const services = asMap(compose.services, 'services');
  const image = parseDockerfile(deployFile('Dockerfile'));
  const example = filledEnv(parseEnvFile(deployFile('herald.env.example')).active);
  const nodePorts: number[] = [];
  let nginxService: string | undefined;
  for (const [name, value] of Object.entries(services)) {
    const service = asMap(value, name);
    const volumes = service.volumes === undefined ? [] : asList(service.volumes, `${name}.volumes`);
    if (volumes.some((v) => v.endsWith(':/etc/nginx/nginx.conf:ro'))) {
      nginxService = name;
      const confMount = volumes.find((v) => v.endsWith(':/etc/nginx/nginx.conf:ro'))!;
      assert.equal(join(DEPLOY, confMount.split(':')[0]!), join(DEPLOY, 'nginx.conf'), 'nginx runs docs/deploy/nginx.conf');
      const certDir = /ssl_certificate\s+(\S+)\/[^/\s]+;/.exec(deployFile('nginx.conf'))![1]!;
      assert.ok(volumes.some((v) => v.split(':')[1] === certDir), `the certificates are mounted at ${certDir}`);
    }
    if (service.command === undefined || !asList(service.command, `${name}.command`).some((word) => word.endsWith('main.js'))) continue;
    const build = asMap(service.build, `${name}.build`);
    assert.ok(existsSync(join(DEPLOY, String(build.context), String(build.dockerfile))), `${name} builds docs/deploy/Dockerfile`);
    assert.equal(join(DEPLOY, String(build.context)), ROOT, `${name} builds from the repository root`);
    assert.equal(service.env_file, 'herald.env', `${name} reads herald.env (a filled-in herald.env.example)`);
    const environment = asMap(service.environment, `${name}.environment`) as Record<string, string>;
    for (const key of Object.keys(environment)) assert.ok(ENV_NAMES.has(key), `${name}: ${key} is a herald serve setting`);
    const config = resolveServeConfig(serveArgs(asList(service.command, `${name}.command`), name), { ...dockerEnv(image), ...example, ...environment });
    assert.equal(config.herald.maxSessionsPerAddress, 0);
    assert.equal(config.host, '127.0.0.1', `${name} listens only inside the namespace it shares with nginx`);
    const engine = new URL(String(config.herald.engine));
    assert.ok(engine.hostname in services, `${name}'s Redis (${engine.hostname}) is a service`);
    assert.ok(service.stop_grace_period !== undefined && timeSpanMs(String(service.stop_grace_period)) >= shutdownGraceMs(config) + 10_000, `${name} has time to drain (stop_grace_period)`);
    nodePorts.push(config.port);
  }
  assert.ok(nginxService !== undefined, 'an nginx service runs nginx.conf');
  for (const [name, value] of Object.entries(services)) {
    const service = asMap(value, name);
    if (service.command !== undefined && asList(service.command, name).some((word) => word.endsWith('main.js'))) {
      assert.equal(service.network_mode, `service:${nginxService}`, `${name} shares nginx's network namespace, where the upstream's 127.0.0.1 is`);
    }
  }
  assert.deepEqual(nodePorts.sort(), upstreamPorts().sort(), 'the nodes are the upstream of nginx.conf');
});

test('the recipes serve: nginx.conf in front of two herald@.service nodes on Redis', async (t) => {
  const nginx = nginxBinary();
  const redis = await startRedis(t);
  const upstream = upstreamPorts();
  const [http, https, ...nodePorts] = await Promise.all([freePort(), freePort(), ...upstream.map(() => freePort())]);

  // ---- the nodes, as systemd would start them: ExecStart, Environment= and the filled-in herald.env
  const unit = parseUnit(deployFile('herald@.service'), 'herald@.service');
  const example = parseEnvFile(deployFile('herald.env.example'));
  const env: Record<string, string> = { ...unitEnvironment(unit), ...filledEnv(example.active), HERALD_ENGINE: redis.url };
  const publishKey = env.HERALD_PUBLISH_KEY!;
  const workingDirectory = unitValue(unit, 'Service', 'WorkingDirectory')!;
  const nodes = nodePorts.map((port) => {
    const [command, ...args] = execStart(unit, String(port)).map((word) => (word.startsWith(`${workingDirectory}/`) ? join(ROOT, word.slice(workingDirectory.length + 1)) : word));
    const child = spawn(command!, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
    onCleanup(t, async () => {
      if (!running(child)) return;
      child.kill('SIGKILL');
      await exited(child, `node ${port}`);
    });
    return { port, child, log: () => log };
  });
  for (const node of nodes) {
    await waitFor(`the node on ${node.port} is ready (its Redis connected)`, async () => {
      if (!running(node.child)) assert.fail(`the node on ${node.port} exited: ${node.log()}`);
      const ready = await call(0, { path: '/ready', plainPort: node.port }).catch(() => undefined);
      return ready?.status === 200;
    }, 15_000);
  }

  // ---- nginx with the recipe's configuration
  const dir = nginxPrefix(t, { http, https, upstream: nodePorts });
  const server = spawn(nginx, nginxArgs(dir, 'daemon off;'), { stdio: ['ignore', 'ignore', 'pipe'] });
  let nginxLog = '';
  server.stderr!.setEncoding('utf8').on('data', (chunk: string) => (nginxLog += chunk));
  onCleanup(t, async () => {
    if (!running(server)) return;
    const workers = childPids(server.pid!);
    server.kill('SIGTERM'); // fast shutdown: the master stops its workers
    try {
      await exited(server, 'nginx', 5000);
    } catch {
      server.kill('SIGKILL');
      for (const pid of workers) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
  });
  const errorLog = () => {
    const file = join(dir, 'logs', 'error.log');
    return `${nginxLog}${existsSync(file) ? readFileSync(file, 'utf8') : ''}`;
  };
  await waitFor('nginx answers', async () => {
    if (!running(server)) assert.fail(`nginx exited:\n${errorLog()}`);
    return (await call(https, { path: '/health' }).catch(() => undefined))?.status === 200;
  });

  // ---- health, the client script, and nothing else of Herald's
  const health = await call(https, { path: '/health' });
  assert.equal(health.status, 200);
  assert.equal(json(health).status, 'ok');
  assert.equal((await call(https, { path: '/ready' })).status, 200);
  assert.equal(health.headers['strict-transport-security'], 'max-age=63072000', 'HSTS');
  assert.equal((await call(https, { path: '/herald.js' })).status, 200);
  assert.equal((await call(https, { path: '/metrics' })).status, 404, 'only the listed paths are proxied');

  // ---- port 80 redirects; a name that is not the server's gets no answer at all
  const redirect = await call(https, { path: '/bayeux?x=1', plainPort: http });
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers.location, `https://${SERVER_NAME}/bayeux?x=1`);
  await assert.rejects(call(https, { path: '/health', plainPort: http, headers: { Host: 'localhost' } }), /socket hang up|ECONNRESET/, 'Host: localhost is dropped (444)');

  // ---- HTTP/2 to nginx, HTTP/1.1 to the node
  const h2 = http2Connect(`https://127.0.0.1:${https}`, tlsOptions());
  h2.on('error', () => {});
  onCleanup(t, () => h2.close());
  const h2Status = await withTimeout('an HTTP/2 answer', new Promise<number>((resolve, reject) => {
    const stream = h2.request({ ':path': '/health', ':authority': SERVER_NAME });
    stream.on('response', (headers) => resolve(Number(headers[':status'])));
    stream.on('error', reject);
    stream.resume();
  }));
  assert.equal(h2Status, 200);

  // ---- Bayeux long-polling through nginx: the handshake's cookie comes back Secure, the
  // connects stick to the node that knows the session, a held connect delivers at once
  const origin = 'https://herald.example.com';
  let cookie = '';
  const bayeux = async (messages: unknown[], headers: Record<string, string> = {}) => {
    const reply = await call(https, { method: 'POST', path: '/bayeux', body: JSON.stringify(messages), headers: { 'Content-Type': 'application/json', Origin: origin, ...(cookie === '' ? {} : { Cookie: cookie }), ...headers } });
    assert.equal(reply.status, 200, reply.text);
    return { reply, messages: json(reply) as any[] };
  };
  const refused = await call(https, { method: 'POST', path: '/bayeux', body: '[]', headers: { 'Content-Type': 'application/json', Origin: 'https://elsewhere.example' } });
  assert.equal(refused.status, 403, 'an origin that is not allowed is refused: Herald checks Origin against the Host nginx passes');
  const handshake = await bayeux([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]);
  assert.equal(handshake.messages[0].successful, true, handshake.reply.text);
  const clientId: string = handshake.messages[0].clientId;
  const setCookie = handshake.reply.headers['set-cookie']?.[0] ?? '';
  assert.match(setCookie, /^BAYEUX_BROWSER=/);
  assert.match(setCookie, /;\s*secure/i, 'nginx marks the cookie Secure (proxy_cookie_flags)');
  cookie = setCookie.split(';')[0]!;
  const connect = (advice?: unknown) => bayeux([{ channel: '/meta/connect', clientId, connectionType: 'long-polling', ...(advice === undefined ? {} : { advice }) }]);
  const firstConnect = await connect({ timeout: 0 });
  assert.equal(firstConnect.messages[0].successful, true, `the connect reached the node that holds the session (sticky upstream): ${firstConnect.reply.text}`);
  const subscribed = await bayeux([{ channel: '/meta/subscribe', clientId, subscription: '/deploy/lp' }]);
  assert.equal(subscribed.messages[0].successful, true, subscribed.reply.text);
  const held = connect();
  const unauthorised = await call(https, { method: 'POST', path: '/pub/deploy/lp', body: '{"n":0}', headers: { 'Content-Type': 'application/json' } });
  assert.equal(unauthorised.status, 401, 'behind the proxy, publishing needs the key');
  const publish = (channel: string, data: unknown, port?: number) =>
    call(https, { method: 'POST', path: `/pub${channel}`, body: JSON.stringify(data), plainPort: port, headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${publishKey}` } });
  const published = await publish('/deploy/lp', { n: 1 });
  assert.equal(published.status, 200, published.text);
  const delivered = await withTimeout('the held connect to deliver', held);
  assert.deepEqual(delivered.messages.filter((m) => m.channel === '/deploy/lp').map((m) => m.data), [{ n: 1 }]);
  assert.equal(delivered.messages.find((m) => m.channel === '/meta/connect')?.successful, true, 'the connect reached the node that holds the session');

  // ---- Bayeux over WebSocket through nginx
  const socket = new WebSocket(`wss://127.0.0.1:${https}/bayeux`, { ...tlsOptions(), headers: { Host: SERVER_NAME, Origin: origin } });
  const frames: any[] = [];
  socket.on('message', (data) => frames.push(...(JSON.parse(String(data)) as unknown[])));
  socket.on('error', () => {});
  const closed = once(socket, 'close') as Promise<[number, Buffer]>;
  onCleanup(t, () => socket.terminate());
  await withTimeout('the WebSocket upgrade', once(socket, 'open'));
  socket.send(JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'] }]));
  const wsClientId = (await waitFor('the WebSocket handshake', () => frames.find((m) => m.channel === '/meta/handshake'))).clientId as string;
  socket.send(JSON.stringify([{ channel: '/meta/subscribe', clientId: wsClientId, subscription: '/deploy/ws' }]));
  await waitFor('the WebSocket subscription', () => frames.find((m) => m.channel === '/meta/subscribe')?.successful);
  socket.send(JSON.stringify([{ channel: '/meta/connect', clientId: wsClientId, connectionType: 'websocket' }]));
  assert.equal((await publish('/deploy/ws', { n: 2 })).status, 200);
  await waitFor('a delivery over the WebSocket', () => frames.some((m) => m.channel === '/deploy/ws' && m.data?.n === 2));

  // ---- SSE on /sub/ through nginx: a publish through nginx, and one straight into each node,
  // arrive (the nodes share Redis); a REST WebSocket on /sub/ too. Both resume after a first
  // message, so nothing published once they are open can be missed.
  const first = json(await publish('/deploy/sse', 'start'));
  const sse = await openStream(t, https, '/sub/deploy/sse', { Accept: 'text/event-stream', 'Last-Event-ID': first.id });
  assert.equal(sse.res.statusCode, 200);
  assert.match(String(sse.res.headers['content-type']), /text\/event-stream/);
  const restSocket = new WebSocket(`wss://127.0.0.1:${https}/sub/deploy/sse?since=${encodeURIComponent(first.id)}`, { ...tlsOptions(), headers: { Host: SERVER_NAME } });
  const restFrames: string[] = [];
  restSocket.on('message', (data) => restFrames.push(String(data)));
  restSocket.on('error', () => {});
  onCleanup(t, () => restSocket.terminate());
  await withTimeout('the /sub/ WebSocket upgrade', once(restSocket, 'open'));
  assert.equal((await publish('/deploy/sse', { via: 'nginx' })).status, 200);
  for (const node of nodes) assert.equal((await publish('/deploy/sse', { via: node.port }, node.port)).status, 200);
  for (const via of ['nginx', ...nodes.map((n) => n.port)]) {
    const data = JSON.stringify({ via });
    await waitFor(`the event published via ${via}`, () => sse.text().includes(data) && restFrames.some((f) => f.includes(data)));
  }
  assert.ok(!sse.text().includes('"start"') && !restFrames.some((f) => f.includes('"start"')), 'resumed after the first message, not from it');
  assert.match(sse.text(), /^id: /m, 'events carry ids');

  // ---- the Dockerfile's HEALTHCHECK, run for real against a node and against nothing
  const docker = parseDockerfile(deployFile('Dockerfile'));
  const check = docker.filter((i) => i.op === 'HEALTHCHECK').at(-1)!.args;
  const [probe, ...probeArgs] = execForm(check.slice(check.indexOf('CMD') + 3).trim(), 'HEALTHCHECK CMD');
  const runProbe = async (port: number) => {
    const child = spawn(probe === 'node' ? process.execPath : probe!, probeArgs, { env: { PATH: process.env.PATH, HERALD_PORT: String(port) }, stdio: 'ignore' });
    return (await exited(child, 'the health check')).code;
  };
  assert.equal(await runProbe(nodes[0]!.port), 0, 'healthy node: exit 0');
  assert.equal(await runProbe(await freePort()), 1, 'no node: exit 1');

  // ---- stop, as systemd does: SIGTERM; each node drains and exits 0 well inside TimeoutStopSec
  const stopMs = timeSpanMs(unitValue(unit, 'Service', 'TimeoutStopSec')!);
  const started = performance.now();
  for (const node of nodes) node.child.kill('SIGTERM');
  for (const node of nodes) {
    const { code } = await exited(node.child, `node ${node.port} to drain`, stopMs);
    assert.equal(code, 0, `node ${node.port} exits 0 after draining:\n${node.log()}`);
  }
  const drainMs = performance.now() - started;
  t.diagnostic(`the nodes drained in ${Math.round(drainMs)} ms (TimeoutStopSec: ${stopMs} ms)`);
  assert.ok(drainMs < stopMs / 2, `drained in ${Math.round(drainMs)} ms, well inside TimeoutStopSec (${stopMs} ms)`);
  const [code] = await withTimeout('the WebSocket to close', closed);
  assert.equal(code, 1001, 'the WebSocket closes with 1001 (going away), through nginx');
  // (Not root, nginx cannot raise its descriptor limit: worker_rlimit_nofile's alert is expected then.)
  const serious = errorLog().split('\n').filter((line) => /\[(emerg|alert|crit)\]/.test(line) && !/setrlimit\(RLIMIT_NOFILE/.test(line));
  assert.deepEqual(serious, [], 'nginx logged no serious error');
});

test('herald serve refuses a herald.env.example not filled in with exit 2 (which systemd does not restart)', async () => {
  const child = spawn(process.execPath, [join(ROOT, packageBin()), 'serve', '--port', '0', '--demo', 'off'], {
    env: { PATH: process.env.PATH, ...parseEnvFile(deployFile('herald.env.example')).active, HERALD_ENGINE: 'memory' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const { code } = await exited(child, 'herald serve');
  assert.equal(code, 2);
  assert.match(stderr, /HERALD_PUBLISH_KEY/);
  assert.equal(unitValue(parseUnit(deployFile('herald.service'), 'herald.service'), 'Service', 'RestartPreventExitStatus'), String(code));
});

test('docs/deploy.md names every file in docs/deploy/, and README links it', () => {
  const guide = readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8');
  for (const file of readdirSync(DEPLOY)) assert.ok(guide.includes(file), `docs/deploy.md mentions ${file}`);
  assert.match(readFileSync(join(ROOT, 'README.md'), 'utf8'), /\]\(docs\/deploy\.md\)/);
});
