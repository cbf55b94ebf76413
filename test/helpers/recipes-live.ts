/**
 * Running the deploy recipes for test/docs/recipes-*.test.ts: docs/deploy/nginx.conf in a
 * throwaway prefix (nothing written outside it), the processes started (every wait has a
 * ceiling), and HTTPS to nginx as a browser of https://herald.example.com would speak it.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { onCleanup } from './cleanup.js';
import { CERT, deployFile, KEY, ROOT, SERVER_NAME } from './recipes.js';
import { withTimeout } from './wait.js';

type Hookable = { after(fn: () => unknown): void };

// ---------------------------------------------------------------- nginx

export function nginxBinary(): string {
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

export interface LivePorts {
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
export function nginxPrefix(t: Hookable, live?: LivePorts): string {
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
export function nginxArgs(dir: string, extra = ''): string[] {
  return ['-e', join(dir, 'logs', 'startup.log'), '-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-g', `pid ${dir}/nginx.pid; lock_file ${dir}/nginx.lock; ${extra}`];
}


// ---------------------------------------------------------------- processes

/** Exits or fails the test after `ms`: never a wait without a ceiling. */
export async function exited(child: ChildProcess, what: string, ms = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  const [code, signal] = (await withTimeout(`${what} to exit`, once(child, 'exit'), ms)) as [number | null, NodeJS.Signals | null];
  return { code, signal };
}

export function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** The pids of a process's children (nginx's workers), read from /proc. */
export function childPids(pid: number): number[] {
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

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

export interface Call {
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
export function tlsOptions() {
  return { servername: SERVER_NAME, ca: readFileSync(CERT), checkServerIdentity: () => undefined };
}

export function call(httpsPort: number, req: Call): Promise<Reply> {
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

export function json(reply: Reply): any {
  try {
    return JSON.parse(reply.text);
  } catch {
    assert.fail(`not JSON (${reply.status}): ${reply.text.slice(0, 300)}`);
  }
}

/** A response left open (an event stream): what it has sent so far. */
export async function openStream(t: Hookable, httpsPort: number, path: string, headers: Record<string, string>) {
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
