/**
 * @module
 * The few files Herald serves besides its protocols: the browser client at `/herald.js` (built by
 * `npm run build` into dist/), and the demo pages from web/ when enabled. A fixed table, never a
 * path from the request, so nothing else on disk can be reached.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sendError } from '../transports/http.js';

export const CLIENT_SCRIPT_PATH = '/herald.js';

interface StaticFile {
  readonly file: string;
  readonly type: string;
}

const CLIENT_FILES: Record<string, StaticFile> = {
  [CLIENT_SCRIPT_PATH]: { file: 'dist/herald.js', type: 'text/javascript; charset=utf-8' },
  '/herald.js.map': { file: 'dist/herald.js.map', type: 'application/json; charset=utf-8' },
};

const DEMO_FILES: Record<string, StaticFile> = {
  '/': { file: 'web/index.html', type: 'text/html; charset=utf-8' },
  '/ticker': { file: 'web/ticker.html', type: 'text/html; charset=utf-8' },
  '/demo.css': { file: 'web/demo.css', type: 'text/css; charset=utf-8' },
  '/status.js': { file: 'web/status.js', type: 'text/javascript; charset=utf-8' },
  '/chat.js': { file: 'web/chat.js', type: 'text/javascript; charset=utf-8' },
  '/ticker.js': { file: 'web/ticker.js', type: 'text/javascript; charset=utf-8' },
};

/** The live dashboard (web/dashboard.html): served only through the admin gate (dashboard.ts). */
const DASHBOARD_FILES: Record<string, StaticFile> = {
  '/dashboard': { file: 'web/dashboard.html', type: 'text/html; charset=utf-8' },
  '/dashboard/dashboard.js': { file: 'web/dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/dashboard.css': { file: 'web/dashboard.css', type: 'text/css; charset=utf-8' },
};

/** The demo's pages load only their own scripts and talk only to this server. */
const DEMO_POLICY = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

interface Loaded {
  readonly body: Buffer;
  readonly etag: string;
}

export class StaticFiles {
  readonly #files: Record<string, StaticFile>;
  readonly #root = packageRoot();
  readonly #cache = new Map<string, Loaded>();

  constructor(options: { clientScript: boolean; demo: boolean }) {
    this.#files = { ...(options.clientScript ? CLIENT_FILES : {}), ...(options.demo ? DEMO_FILES : {}) };
  }

  /** Serves the request if it names one of the files; false otherwise. */
  serve(req: IncomingMessage, res: ServerResponse, pathname: string): boolean {
    return this.#serveFrom(this.#files, req, res, pathname);
  }

  /** The dashboard's page and script, for a request the admin gate let through. */
  serveDashboard(req: IncomingMessage, res: ServerResponse, pathname: string): boolean {
    return this.#serveFrom(DASHBOARD_FILES, req, res, pathname);
  }

  #serveFrom(files: Record<string, StaticFile>, req: IncomingMessage, res: ServerResponse, pathname: string): boolean {
    const entry = Object.hasOwn(files, pathname) ? files[pathname]! : undefined;
    if (entry === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const loaded = this.#load(entry.file);
    if (loaded === undefined) {
      sendError(res, 404, `${entry.file} is missing: run npm run build`);
      return true;
    }
    const headers: Record<string, string | number> = {
      'Content-Type': entry.type,
      'Cache-Control': 'no-cache',
      ETag: loaded.etag,
      'X-Content-Type-Options': 'nosniff',
    };
    if (entry.type.startsWith('text/html')) headers['Content-Security-Policy'] = DEMO_POLICY;
    if (req.headers['if-none-match'] === loaded.etag) {
      res.writeHead(304, headers).end();
      return true;
    }
    res.writeHead(200, { ...headers, 'Content-Length': loaded.body.length });
    res.end(req.method === 'HEAD' ? undefined : loaded.body);
    return true;
  }

  #load(file: string): Loaded | undefined {
    const cached = this.#cache.get(file);
    if (cached !== undefined) return cached;
    const path = join(this.#root, file);
    if (!existsSync(path)) return undefined;
    const body = readFileSync(path);
    const loaded = { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
    this.#cache.set(file, loaded);
    return loaded;
  }
}

/** The folder holding Herald's package.json, from dist/ or from the tests' build/ alike. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}
