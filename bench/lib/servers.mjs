// The servers bench/compare.mjs measures, each started fresh on 127.0.0.1 and stopped by its PID, and
// what /proc says about them: CPU (utime+stime, summed over nginx's master and worker) and resident
// memory. Node servers run with --expose-gc and an IPC channel (servers/gc-hook.mjs) so that memory
// is read after a full GC; nginx has no collector to run.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const SERVERS = join(HERE, '..', 'servers');
const TICKS_PER_SECOND = 100; // USER_HZ on Linux
const READY_TIMEOUT_MS = 20_000;
export const NCHAN_MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so';

/** Every process started here, killed by PID whatever way the benchmark ends. */
export const children = new Set();

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** nginx prefixes still in use: removed when the benchmark exits, also on an abort. */
const prefixes = new Set();

export function killAll(signal = 'SIGKILL') {
  for (const child of children) {
    try {
      process.kill(child.pid, signal);
    } catch {}
  }
  for (const dir of prefixes) rmSync(dir, { recursive: true, force: true });
}

/** Runs `argv` with the open-files soft limit raised to the hard limit (where the shell may), in place of the shell. */
export function spawnRaised(argv, options) {
  const script = 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"';
  return track(spawn('/bin/sh', ['-c', script, 'sh', ...argv], options));
}

// ---- /proc ----

/** User and system CPU of one process so far, in ms (fields 14 and 15 of /proc/<pid>/stat, all threads). */
function cpuOf(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: (Number(fields[11]) * 1000) / TICKS_PER_SECOND, system: (Number(fields[12]) * 1000) / TICKS_PER_SECOND };
}

function rssBytesOf(pid) {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match[1]) * 1024;
}

function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * The kernel's count of connections dropped because a listen queue was full (TcpExt ListenOverflows,
 * whole machine): each costs its client a SYN retransmission, ≥ 1 s, in a connection storm.
 */
export function listenOverflows() {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((line) => line.startsWith('TcpExt:'));
  const names = lines[0].split(/\s+/);
  const counts = lines[1].split(/\s+/);
  return Number(counts[names.indexOf('ListenOverflows')]);
}

// ---- ports ----

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, child, log) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}):\n${log()}`);
    const open = await new Promise((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`server not listening on ${port} within ${READY_TIMEOUT_MS} ms:\n${log()}`);
}

// ---- servers ----

class Server {
  constructor(child, port, cleanup = () => {}) {
    this.child = child;
    this.port = port;
    this.cleanup = cleanup;
  }

  /** The processes whose CPU and memory count: the server, and for nginx its workers. */
  get pids() {
    return [this.child.pid, ...childPids(this.child.pid)];
  }

  cpu() {
    let user = 0;
    let system = 0;
    for (const pid of this.pids) {
      const cpu = cpuOf(pid);
      user += cpu.user;
      system += cpu.system;
    }
    return { user, system, total: user + system };
  }

  rss() {
    return this.pids.reduce((sum, pid) => sum + rssBytesOf(pid), 0);
  }

  /** A full GC where there is a collector (Node servers); resolves when done. */
  async gc() {
    if (!this.child.connected) return;
    const done = new Promise((resolve) => this.child.once('message', resolve));
    this.child.send('gc');
    const reply = await done;
    if (reply !== 'gc-done') throw new Error(`server could not collect: ${reply} (is it running with --expose-gc?)`);
  }

  /** process.memoryUsage() of a Node server (servers/gc-hook.mjs); undefined for nginx. */
  async memory() {
    if (!this.child.connected) return undefined;
    const done = new Promise((resolve) => this.child.once('message', resolve));
    this.child.send('memory');
    return (await done).memory;
  }

  async stop(graceMs = 5_000) {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
    this.cleanup();
  }
}

/** A Node server of bench/servers/<name>.mjs, which prints "ready <port>". */
export async function startNodeServer(name, extraArgs = []) {
  // BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the servers.
  const nodeArgs = ['--expose-gc', ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  const child = spawnRaised([process.execPath, ...nodeArgs, join(SERVERS, `${name}.mjs`), '0', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (text) => {
    log += text;
    if (log.length > 20_000) log = log.slice(-10_000);
    process.stderr.write(`  [${name}] ${text}`);
  });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready within ${READY_TIMEOUT_MS} ms:\n${log}`)), READY_TIMEOUT_MS);
    // 'close', not 'exit': by then its stderr (the reason) has been read.
    child.once('close', (code) => (clearTimeout(timer), reject(new Error(`${name} exited (${code}): ${log.trim().split('\n').slice(-3).join(' / ')}`))));
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text) => {
      out += text;
      const match = /ready (\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
  });
  child.stdout.resume();
  return new Server(child, port);
}

/** Installs Debian's Nchan module when it is missing (as root, with apt-get). */
export function ensureNchan() {
  if (existsSync(NCHAN_MODULE) && existsSync('/usr/sbin/nginx')) return;
  console.error('Nchan is missing: apt-get install -y nginx libnginx-mod-nchan');
  const result = spawnSync('apt-get', ['install', '-y', 'nginx', 'libnginx-mod-nchan'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (result.status !== 0 || !existsSync(NCHAN_MODULE)) {
    throw new Error(`could not install libnginx-mod-nchan (apt-get exited ${result.status}): run "apt-get update && apt-get install -y libnginx-mod-nchan" as root`);
  }
}

/** nginx with Nchan (servers/nchan.conf) in a throwaway prefix, in the foreground, one worker. */
export async function startNchan() {
  ensureNchan();
  const dir = mkdtempSync(join(tmpdir(), 'bench-nchan-'));
  prefixes.add(dir);
  chmodSync(dir, 0o755); // the worker runs as nobody when the master is root
  const port = await freePort();
  const conf = readFileSync(join(SERVERS, 'nchan.conf'), 'utf8').replaceAll('__PREFIX__', dir).replaceAll('__PORT__', String(port));
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const nginx = process.env.NGINX ?? '/usr/sbin/nginx';
  const child = spawnRaised([nginx, '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (text) => (log += text));
  const errorLog = () => {
    try {
      return log + readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      return log;
    }
  };
  await waitForPort(port, child, errorLog);
  return new Server(child, port, () => {
    rmSync(dir, { recursive: true, force: true });
    prefixes.delete(dir);
  });
}
