/**
 * The transports only a browser can drive: callback-polling (JSONP through <script> tags) for the
 * official CometD client and Faye, and EventSource for Faye — each forced alone.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startBrowserRig } from '../helpers/browser.js';

const CLIENTS = 100;
const MESSAGES = 50;

/** In the page: the basic round trip — subscribe with wildcards, publish with a reply, unsubscribe. */
async function basicsInPage({ kind, transport, url }: { kind: 'cometd' | 'faye'; transport: string; url: string }) {
  const g = globalThis as any;
  const waitFor = async (what: string, check: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const exact: unknown[] = [];
  const one: unknown[] = [];
  const deep: string[] = [];
  if (kind === 'cometd') {
    const client = new g.CometDLib.CometD();
    for (const type of ['websocket', 'long-polling', 'callback-polling']) if (type !== transport) client.unregisterTransport(type);
    client.configure({ url, logLevel: 'warn' });
    const call = (fn: (cb: (reply: any) => void) => void) => new Promise<any>((resolve) => fn(resolve));
    const handshake = await call((cb) => client.handshake(cb));
    if (!handshake.successful) throw new Error('handshake failed ' + JSON.stringify(handshake));
    const used = client.getTransport().type;
    const sub = await new Promise<any>((resolve) => {
      const handle = client.subscribe('/room/a', (m: any) => exact.push(m.data), () => resolve(handle));
    });
    await call((cb) => client.subscribe('/room/*', (m: any) => one.push(m.data), cb));
    await call((cb) => client.subscribe('/room/**', (m: any) => deep.push(m.channel), cb));
    const reply = await call((cb) => client.publish('/room/a', { n: 1 }, cb));
    await call((cb) => client.publish('/room/a/b', { n: 2 }, cb));
    await waitFor('two deliveries', () => deep.length === 2);
    const unsubscribed = await call((cb) => client.unsubscribe(sub, cb));
    await call((cb) => client.publish('/room/a', { n: 3 }, cb));
    await waitFor('the third delivery', () => deep.length === 3);
    await call((cb) => client.disconnect(cb));
    return { used, publishOk: reply.successful, unsubscribed: unsubscribed.successful, exact, one, deep };
  }
  const client = new g.Faye.Client(url, { timeout: 10 });
  // Faye handshakes over a mandatory HTTP type: eventsource keeps them for that.
  const keep = transport === 'eventsource' ? ['eventsource', 'long-polling', 'callback-polling'] : [transport];
  for (const type of ['websocket', 'eventsource', 'long-polling', 'cross-origin-long-polling', 'callback-polling']) if (!keep.includes(type)) client.disable(type);
  const sub = client.subscribe('/room/a', (d: unknown) => exact.push(d));
  await sub;
  await client.subscribe('/room/*', (d: unknown) => one.push(d));
  await client.subscribe('/room/**', () => deep.push('x'));
  await client.publish('/room/a', { n: 1 });
  await client.publish('/room/a/b', { n: 2 });
  await waitFor('two deliveries', () => deep.length === 2);
  await sub.cancel();
  await client.publish('/room/a', { n: 3 });
  await waitFor('the third delivery', () => deep.length === 3);
  const used = client._dispatcher._transport.connectionType;
  await client.disconnect();
  return { used, publishOk: true, unsubscribed: true, exact, one, deep };
}

/**
 * In the page: `clients` subscribers whose logs collect in `globalThis.heraldLogs`. CometD names its
 * JSONP callbacks per client instance on `window`, so several CometD clients need a window each: an
 * iframe per client.
 */
async function subscribeInPage({ kind, transport, url, clients }: { kind: 'cometd' | 'faye'; transport: string; url: string; clients: number }) {
  const g = globalThis as any;
  const logs: number[][] = (g.heraldLogs = []);
  const used = new Set<string>();
  const windows: any[] = [];
  if (kind === 'cometd') {
    // Load every frame at once; only the handshakes must take turns.
    for (let i = 0; i < clients; i++) {
      const frame = g.document.createElement('iframe');
      frame.src = '/cometd-frame.html';
      g.document.body.append(frame);
      windows.push(frame.contentWindow);
    }
    const deadline = Date.now() + 60_000;
    while (windows.some((win) => win.CometDLib === undefined) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  for (let i = 0; i < clients; i++) {
    const log: number[] = [];
    logs.push(log);
    if (kind === 'cometd') {
      const client = new windows[i].CometDLib.CometD();
      for (const type of ['websocket', 'long-polling', 'callback-polling']) if (type !== transport) client.unregisterTransport(type);
      client.configure({ url, logLevel: 'warn' });
      // Tabs of one browser share a cookie: handshake them one at a time.
      await new Promise<void>((resolve, reject) => client.handshake((r: any) => (r.successful ? resolve() : reject(new Error(JSON.stringify(r))))));
      await new Promise<void>((resolve) => client.subscribe('/load/**', (m: any) => log.push(m.data.seq), () => resolve()));
      used.add(client.getTransport().type);
    } else {
      const client = new g.Faye.Client(url, { timeout: 10 });
      // Faye handshakes over a mandatory HTTP type: eventsource keeps them for that.
      const keep = transport === 'eventsource' ? ['eventsource', 'long-polling', 'callback-polling'] : [transport];
      for (const type of ['websocket', 'eventsource', 'long-polling', 'cross-origin-long-polling', 'callback-polling']) if (!keep.includes(type)) client.disable(type);
      await client.subscribe('/load/room', (d: any) => log.push(d.seq));
      // Faye moves from its handshake transport to the best one once that is usable.
      const deadline = Date.now() + 10_000;
      while (client._dispatcher._transport.connectionType !== transport && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      used.add(client._dispatcher._transport.connectionType);
    }
  }
  return [...used];
}

async function publishInPage({ url, messages }: { url: string; messages: number }) {
  const publisher = new (globalThis as any).Faye.Client(url, { timeout: 10 });
  publisher.disable('websocket');
  publisher.disable('eventsource');
  for (let seq = 0; seq < messages; seq++) await publisher.publish('/load/room', { seq });
  publisher.disconnect();
}

/** In the page: waits (bounded) until every client has `messages` messages, then returns the logs. */
async function collectInPage(messages: number): Promise<number[][]> {
  const logs: number[][] = (globalThis as any).heraldLogs;
  const deadline = Date.now() + 60_000;
  while (logs.some((log) => log.length < messages) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return logs;
}

const EXPECTED = Array.from({ length: MESSAGES }, (_, i) => i);

describe('browser transports (Chromium)', () => {
  for (const [kind, transport] of [
    ['cometd', 'callback-polling'],
    ['faye', 'callback-polling'],
    ['faye', 'eventsource'],
  ] as const) {
    test(`${kind} over ${transport} alone: subscribe, wildcards, publish, unsubscribe`, async (t) => {
      const { page, origin } = await startBrowserRig(t, { timeoutMs: 10_000 });
      const result = await page.evaluate(basicsInPage, { kind, transport, url: `${origin()}/${kind === 'cometd' ? 'cometd' : 'bayeux'}` });
      assert.equal(result.used, transport);
      assert.equal(result.publishOk, true);
      assert.equal(result.unsubscribed, true);
      assert.deepEqual(result.exact, [{ n: 1 }]);
      assert.deepEqual(result.one, [{ n: 1 }, { n: 3 }]);
      assert.equal(result.deep.length, 3);
      if (kind === 'cometd') assert.deepEqual(result.deep, ['/room/a', '/room/a/b', '/room/a'], 'concrete channels');
    });

    test(`${CLIENTS} ${kind} clients × ${MESSAGES} messages over ${transport}: exactly once, in order`, async (t) => {
      // An EventSource holds a connection, a browser allows six per host, and Faye's needs its page
      // on the same origin: a page per host, four clients each.
      const pages = transport === 'eventsource' ? Math.ceil(CLIENTS / 4) : 1;
      const { page, origin, openPage } = await startBrowserRig(t, { timeoutMs: 10_000 }, pages);
      const path = kind === 'cometd' ? 'cometd' : 'bayeux';
      const all = [page];
      for (let n = 2; n <= pages; n++) all.push(await openPage(n));
      const used = new Set<string>();
      for (const [i, p] of all.entries()) {
        const types = await p.evaluate(subscribeInPage, { kind, transport, url: `${origin(i + 1)}/${path}`, clients: CLIENTS / pages });
        for (const type of types) used.add(type);
      }
      assert.deepEqual([...used], [transport]);
      await page.evaluate(publishInPage, { url: `${origin(1)}/bayeux`, messages: MESSAGES });
      const logs = (await Promise.all(all.map((p) => p.evaluate(collectInPage, MESSAGES)))).flat();
      assert.equal(logs.length, CLIENTS);
      logs.forEach((log, i) => assert.deepEqual(log, EXPECTED, `client ${i}`));
    });
  }
});
