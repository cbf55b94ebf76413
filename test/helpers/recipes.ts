/**
 * Reading the deploy recipes in docs/deploy/ exactly, for test/docs/recipes-*.test.ts: where they
 * are, the `herald serve` flags a command line gives, and small strict parsers of
 * herald.env.example, the systemd units, the Dockerfile, docker-compose.yml and nginx.conf's
 * upstream. Each parser fails loudly on anything outside what it reads, so a check never passes
 * on a misreading.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVE_SETTINGS } from '../../src/server/config.js';
import type { ServeConfig } from '../../src/server/config.js';
import { HERALD_DEFAULTS } from '../../src/server/create-herald.js';

export const ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
export const DEPLOY = join(ROOT, 'docs', 'deploy');
export const CERT = join(ROOT, 'test', 'fixtures', 'tls-cert.pem');
export const KEY = join(ROOT, 'test', 'fixtures', 'tls-key.pem');
export const SERVER_NAME = 'herald.example.com';
export const ENV_NAMES = new Set<string>(Object.values(SERVE_SETTINGS).map((s) => s.env));

export const deployFile = (name: string) => readFileSync(join(DEPLOY, name), 'utf8');

/** What follows `serve` in a command line: the flags of `herald serve`. */
export function serveArgs(argv: readonly string[], where: string): string[] {
  const at = argv.indexOf('serve');
  assert.ok(at > 0 && argv[at - 1]!.endsWith('dist/cli/main.js'), `${where}: runs dist/cli/main.js serve: ${argv.join(' ')}`);
  return argv.slice(at + 1);
}

/** How long `herald serve` so configured may take to exit after SIGTERM. */
export function shutdownGraceMs(config: ServeConfig): number {
  return config.herald.shutdownGraceMs ?? HERALD_DEFAULTS.shutdownGraceMs;
}

export function packageBin(): string {
  const bin = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin.herald!;
  return posix.normalize(bin);
}

// ---------------------------------------------------------------- herald.env.example

export interface EnvFile {
  /** NAME=value lines in force. */
  readonly active: Record<string, string>;
  /** `#NAME=value` lines: settings shown for the operator to turn on. */
  readonly commented: Record<string, string>;
}

export function parseEnvFile(text: string): EnvFile {
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
export function filledEnv(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([name, value]) => [name, value === 'CHANGE-ME' ? randomBytes(32).toString('hex') : value]));
}

// ---------------------------------------------------------------- systemd units

export type Unit = Map<string, Map<string, string[]>>;

export function parseUnit(text: string, name: string): Unit {
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

export function unitValue(unit: Unit, section: string, key: string): string | undefined {
  return unit.get(section)?.get(key)?.at(-1);
}

/** A systemd time span such as 30s, 1min 30s, 500ms or 30 (seconds), in milliseconds. */
export function timeSpanMs(text: string): number {
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
export function execStart(unit: Unit, instance: string): string[] {
  const line = unitValue(unit, 'Service', 'ExecStart');
  assert.ok(line !== undefined, 'ExecStart is set');
  assert.ok(!/["'\\$]/.test(line), `ExecStart needs no quoting or variables: ${line}`);
  const words = line.split(/\s+/).map((word) => word.replaceAll('%i', instance));
  assert.ok(!words.some((word) => word.includes('%')), `no specifier other than %i: ${line}`);
  return words;
}

export function unitEnvironment(unit: Unit): Record<string, string> {
  return Object.fromEntries((unit.get('Service')?.get('Environment') ?? []).map((entry) => {
    const [name, ...value] = entry.split('=');
    return [name!, value.join('=')];
  }));
}

// ---------------------------------------------------------------- Dockerfile

export interface Instruction {
  readonly op: string;
  readonly args: string;
}

export function parseDockerfile(text: string): Instruction[] {
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
export function execForm(text: string, what: string): string[] {
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
export function dockerEnv(instructions: readonly Instruction[]): Record<string, string> {
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

export type Yaml = string | Yaml[] | { [key: string]: Yaml };

/**
 * The YAML subset docker-compose.yml is written in: block mappings and sequences, plain scalars,
 * and double-quoted strings and flow sequences written as JSON. Anything else fails loudly.
 */
export function parseYaml(text: string): Yaml {
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

export function asMap(value: Yaml | undefined, what: string): Record<string, Yaml> {
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), `${what} is a mapping`);
  return value;
}

export function asList(value: Yaml | undefined, what: string): string[] {
  assert.ok(Array.isArray(value) && value.every((v) => typeof v === 'string'), `${what} is a list of strings`);
  return value as string[];
}

// ---------------------------------------------------------------- nginx.conf

/** The ports of the nodes in nginx.conf's upstream, in order. */
export function upstreamPorts(): number[] {
  const upstream = /upstream herald \{([^}]*)\}/.exec(deployFile('nginx.conf'));
  assert.ok(upstream !== null, 'nginx.conf has an upstream herald');
  return [...upstream[1]!.matchAll(/^\s*server 127\.0\.0\.1:(\d+)/gm)].map((m) => Number(m[1]));
}
