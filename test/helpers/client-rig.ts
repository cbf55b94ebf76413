/**
 * A Herald (serving /herald.js and the demo) on a server of the test's own, which can refuse
 * WebSocket upgrades as a proxy would, and restart on the same port; plus a blank page that loads
 * the client bundle.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { BrowserContext, Page } from 'playwright-core';
import { createHerald } from '../../src/server/create-herald.js';
import type { Herald, HeraldOptions } from '../../src/server/create-herald.js';
import { onCleanup } from './cleanup.js';

type Hookable = { after(fn: () => unknown): void };

export const BLANK_PAGE = '/blank.html';
const BLANK = '<!doctype html><meta charset="utf-8"><title>herald client</title><script src="/herald.js"></script>';

export interface ClientRig {
  readonly herald: Herald;
  readonly port: number;
  readonly origin: string;
  /** Answers every WebSocket upgrade with 403, as a proxy that does not pass them would. */
  refuseUpgrades: boolean;
  upgradesSeen: number;
  /** The application's own routes, beside Herald's and the blank page: true when it answered. */
  app: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  /** Stops Herald and its server, runs `meanwhile` against the next Herald, then serves it on the same port. */
  restart(meanwhile: (next: Herald) => Promise<void>): Promise<void>;
}

export async function startClientRig(t: Hookable, options: HeraldOptions = {}, host = '127.0.0.1'): Promise<ClientRig> {
  let server: Server | undefined;
  const rig = {
    herald: undefined as unknown as Herald,
    port: 0,
    origin: '',
    refuseUpgrades: false,
    upgradesSeen: 0,
    app: undefined as ClientRig['app'],
    async restart(meanwhile: (next: Herald) => Promise<void>) {
      await rig.herald.close();
      await new Promise((resolve) => server!.close(resolve));
      const next = createHerald(options);
      await meanwhile(next);
      await serve(next, rig.port);
    },
  };
  const serve = async (herald: Herald, port: number) => {
    const created = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.url === BLANK_PAGE) res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(BLANK);
      else if (rig.app?.(req, res) !== true) res.writeHead(404).end();
    });
    herald.attach(created);
    const heraldUpgrade = created.listeners('upgrade')[0] as (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
    created.removeAllListeners('upgrade');
    created.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      rig.upgradesSeen++;
      if (!rig.refuseUpgrades) return heraldUpgrade.call(created, req, socket, head);
      socket.on('error', () => undefined);
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    await new Promise<void>((resolve, reject) => {
      created.once('error', reject);
      created.listen(port, host, () => resolve());
    });
    server = created;
    rig.herald = herald;
    rig.port = (created.address() as AddressInfo).port;
    rig.origin = `http://${host}:${rig.port}`;
  };
  await serve(createHerald(options), 0);
  onCleanup(t, async () => {
    await rig.herald.close();
    server?.close();
  });
  return rig;
}

/** Opens `path` of `origin` in a new page of `context`, failing the test on any page error. */
export async function openPage(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
  await page.goto(url);
  await page.waitForFunction(() => typeof (globalThis as any).Herald === 'function');
  return page;
}

/**
 * Starts a client in the page as `window.client`, subscribed to `channel`; what it receives goes
 * to `window.received`, state changes to `window.states`. Resolves once subscribed.
 */
export async function startPageClient(page: Page, url: string, channel: string, options: Record<string, unknown> = {}): Promise<void> {
  await page.evaluate(
    async ({ url, channel, options }) => {
      const w = globalThis as any;
      w.received = [];
      w.states = [];
      w.gaps = [];
      w.client = new w.Herald(url, { backoff: { initialMs: 100, maxMs: 1000 }, ...options });
      w.client.on('state', (state: string, detail: { transport?: string }) => w.states.push([state, detail.transport ?? null]));
      w.client.on('gap', (gap: string) => w.gaps.push(gap));
      await w.client.subscribe(channel, (data: unknown) => w.received.push(data)).ready;
    },
    { url, channel, options },
  );
}

export const received = (page: Page): Promise<unknown[]> => page.evaluate(() => (globalThis as any).received);
export const transportOf = (page: Page): Promise<string | undefined> => page.evaluate(() => (globalThis as any).client.transport);
