/**
 * Real Chromium (Debian's, driven by playwright-core) against a real Herald. The page is served by
 * the test's own server, with Herald attached, so the official browser builds of the CometD and
 * Faye clients run exactly as on a website.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { createHerald } from '../../src/server/create-herald.js';
import type { Herald, HeraldOptions } from '../../src/server/create-herald.js';
import { onCleanup } from './cleanup.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const PAGE = `<!doctype html><meta charset="utf-8"><title>herald interop</title>
<script src="/lib/faye-browser.js"></script>
<script type="module">import * as cometd from '/lib/cometd/cometd.js'; window.CometDLib = cometd;</script>`;

const COMETD_FRAME = `<!doctype html><meta charset="utf-8">
<script type="module">import * as cometd from '/lib/cometd/cometd.js'; window.CometDLib = cometd;</script>`;

const STATIC: Record<string, string> = {
  '/lib/faye-browser.js': 'node_modules/faye/client/faye-browser.js',
};

async function serveStatic(path: string): Promise<{ type: string; body: string | Buffer } | undefined> {
  if (path === '/page.html') return { type: 'text/html; charset=utf-8', body: PAGE };
  if (path === '/cometd-frame.html') return { type: 'text/html; charset=utf-8', body: COMETD_FRAME };
  if (STATIC[path] !== undefined) return { type: 'text/javascript', body: await readFile(join(ROOT, STATIC[path]!)) };
  const match = /^\/lib\/cometd\/([A-Za-z0-9]+\.js)$/.exec(path);
  if (match !== null) return { type: 'text/javascript', body: await readFile(join(ROOT, 'node_modules/cometd', normalize(match[1]!))) };
  return undefined;
}

/** Debian's Chromium, headless, closed after the test. */
export async function launchChromium(t: { after(fn: () => unknown): void }): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-features=LocalNetworkAccessChecks',
    ],
  });
  onCleanup(t, () => browser.close());
  return browser;
}

export interface BrowserRig {
  herald: Herald;
  port: number;
  /** `http://127.0.0.<n>:<port>`: the same Herald on another loopback host, so a browser's per-host connection limit is per n. */
  origin(n?: number): string;
  page: Page;
  /** Opens another page at origin(n)/page.html: a client's EventSource must be same-origin for Faye. */
  openPage(n: number): Promise<Page>;
  /** Cuts the TCP connection under every open `/sub/…` response, as a failing network would. */
  cutSubStreams(): number;
}

/** Herald attached to `hosts` servers on 127.0.0.1…n (one port), a page at origin(1)/page.html. */
export async function startBrowserRig(t: { after(fn: () => unknown): void }, options: HeraldOptions = {}, hosts = 1): Promise<BrowserRig> {
  const herald = createHerald(options);
  const servers: Server[] = [];
  const subSockets = new Set<Socket>();
  let port = 0;
  for (let n = 1; n <= hosts; n++) {
    const server = createServer(async (req, res) => {
      const found = await serveStatic(new URL(req.url ?? '/', 'http://x').pathname).catch(() => undefined);
      if (found === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': found.type, 'Cache-Control': 'no-store' }).end(found.body);
    });
    herald.attach(server);
    server.prependListener('request', (req) => {
      if (req.url?.startsWith('/sub/')) subSockets.add(req.socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, `127.0.0.${n}`, () => resolve());
    });
    port = (server.address() as AddressInfo).port;
    servers.push(server);
  }
  onCleanup(t, async () => {
    await herald.close();
    for (const server of servers) server.close();
  });
  const browser = await launchChromium(t);
  const context = await browser.newContext();
  const origin = (n = 1) => `http://127.0.0.${n}:${port}`;
  const openPage = async (n: number) => {
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error('page error:', error.message));
    await page.goto(`${origin(n)}/page.html`);
    await page.waitForFunction(() => (globalThis as any).CometDLib !== undefined && (globalThis as any).Faye !== undefined);
    return page;
  };
  const cutSubStreams = () => {
    const count = subSockets.size;
    for (const socket of subSockets) socket.destroy();
    subSockets.clear();
    return count;
  };
  return { herald, port, origin, page: await openPage(1), openPage, cutSubStreams };
}
