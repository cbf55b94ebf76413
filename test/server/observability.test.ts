/** /metrics (Prometheus), /health (liveness), /ready (readiness) and the live dashboard in Chromium. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { Herald as HeraldClient } from '../../src/client/herald.js';
import { launchChromium } from '../helpers/browser.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

const ADMIN_KEY = 'admin-key-for-the-tests';

/** One sample's value from the text exposition (labels as written, e.g. `{transport="websocket"}`). */
function sample(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  assert.ok(line !== undefined, `${name}${labels} is exposed`);
  return Number(line.split(' ')[1]);
}

describe('/metrics', () => {
  test('counts connections by transport, sessions, messages, refusals, latency, engine round trips and event-loop lag', async (t) => {
    const { port, url, herald } = await startHerald(t, { maxMessageBytes: 100 });
    const metrics = async () => {
      const res = await httpRequest(port, { path: '/metrics' });
      assert.equal(res.status, 200);
      assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      return res.text;
    };
    const before = await metrics();
    assert.equal(sample(before, 'herald_sessions'), 0);
    assert.ok(sample(before, 'herald_process_nodejs_eventloop_lag_seconds') >= 0);

    const client = new HeraldClient(`${url}/bayeux`, { shareConnection: false, transports: ['websocket'], WebSocket });
    onCleanup(t, () => client.close());
    const received: unknown[] = [];
    await client.subscribe('/m/a', (data) => received.push(data)).ready;
    const poller = new RawBayeux(port);
    await poller.open();
    await poller.subscribe('/m/a');
    const held = poller.connect();
    await waitFor('the poll to be held', () => herald.stats().heldConnects >= 1);
    for (let i = 0; i < 3; i++) await herald.publish('/m/a', i);
    await held;
    await waitFor('deliveries', () => received.length === 3);
    const [tooBig] = await poller.publish('/m/a', 'x'.repeat(200));
    assert.equal(tooBig.successful, false);

    const after = await metrics();
    assert.equal(sample(after, 'herald_connections', '{transport="websocket"}'), 1);
    assert.ok(sample(after, 'herald_connections', '{transport="tcp"}') >= 2);
    assert.equal(sample(after, 'herald_sessions'), 2);
    assert.equal(sample(after, 'herald_subscriptions'), 2);
    assert.equal(sample(after, 'herald_channels'), 1);
    assert.equal(sample(after, 'herald_messages_published_total'), 3);
    assert.equal(sample(after, 'herald_messages_received_total'), 3);
    assert.equal(sample(after, 'herald_messages_delivered_total'), 6);
    assert.equal(sample(after, 'herald_limit_refusals_total', '{limit="message_size"}'), 1);
    assert.equal(sample(after, 'herald_delivery_latency_seconds_count'), 3, 'once per message, not per recipient');
    assert.ok(sample(after, 'herald_delivery_latency_seconds_bucket', '{le="1"}') === 3);
    assert.equal(sample(after, 'herald_engine_seconds_count', '{operation="publish"}'), 3);
    assert.equal(sample(after, 'herald_history_messages'), 3);
    assert.ok(sample(after, 'herald_engine_seconds_count', '{operation="subscribe"}') >= 1);
  });

  test('needs the admin key when one is set; without one, loopback only', async (t) => {
    const { port } = await startHerald(t, { adminKey: ADMIN_KEY });
    assert.equal((await httpRequest(port, { path: '/metrics' })).status, 401);
    assert.equal((await httpRequest(port, { path: '/metrics', headers: { Authorization: 'Bearer wrong-key-wrong-key' } })).status, 403);
    assert.equal((await httpRequest(port, { path: '/metrics', headers: { Authorization: `Bearer ${ADMIN_KEY}` } })).status, 200);
    assert.equal((await httpRequest(port, { path: '/dashboard/stats' })).status, 401);
    const open = await startHerald(t);
    assert.equal((await httpRequest(open.port, { path: '/metrics' })).status, 200);
    // A page that reached loopback by DNS rebinding names its own host.
    assert.equal((await httpRequest(open.port, { path: '/metrics', headers: { Host: 'evil.example' } })).status, 403);
  });
});

describe('/health and /ready', () => {
  test('health is liveness (200 while the process serves); ready turns 503 while draining', async (t) => {
    const { port, herald } = await startHerald(t, { shutdownGraceMs: 2000 });
    assert.deepEqual((await httpRequest(port, { path: '/ready' })).json(), { status: 'ready', engine: { healthy: true } });
    const health = await httpRequest(port, { path: '/health' });
    assert.equal(health.status, 200);
    assert.equal(health.json().status, 'ok');
    // Draining: keep one request in flight so the server stays up long enough to be asked.
    const client = new RawBayeux(port);
    await client.open();
    const held = client.connect();
    await waitFor('the held connect', () => herald.stats().heldConnects === 1);
    const closing = herald.close();
    const ready = await httpRequest(port, { path: '/ready' }).catch(() => undefined);
    if (ready !== undefined) {
      assert.equal(ready.status, 503);
      assert.equal(ready.json().status, 'draining');
    }
    await held;
    await closing;
  });
});

describe('dashboard', () => {
  test('renders in Chromium behind the admin key, and its numbers move when a message is published', async (t) => {
    const { url, herald } = await startHerald(t, { adminKey: ADMIN_KEY });
    const browser = await launchChromium(t);
    const page = await (await browser.newContext()).newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    // The refused page's browser asks for /favicon.ico, which is not Herald's to serve.
    page.on('response', (response) => response.status() >= 400 && !response.url().endsWith('/favicon.ico') && problems.push(`${response.status()} ${new URL(response.url()).pathname}`));

    const refused = await page.goto(`${url}/dashboard`);
    assert.equal(refused?.status(), 401, 'no key, no dashboard');
    await page.goto('about:blank');
    problems.length = 0; // the refused page and the favicon its browser asks for

    await page.goto(`${url}/dashboard?key=${ADMIN_KEY}`);
    assert.equal(new URL(page.url()).search, '', 'the key leaves the address bar');
    await page.waitForSelector('#status.live');
    const published = async () => Number((await page.textContent('#published-total'))!.replace(/,/g, ''));
    const start = await published();

    const ws = new WebSocket(`${url.replace('http', 'ws')}/bayeux`);
    onCleanup(t, () => ws.close());
    await new Promise((resolve) => ws.once('open', resolve));
    for (let i = 0; i < 5; i++) await herald.publish('/busy/channel', { i });
    await waitFor('the published total to move', async () => (await published()) >= start + 5, 10_000);
    await waitFor('the rate chart to see it', async () => Number(await page.textContent('#published-rate')) > 0 || (await published()) >= start + 5, 5000);
    await waitFor('the busiest channel listed', async () => (await page.textContent('#channels'))!.includes('/busy/channel'), 5000);
    await waitFor('the websocket among transports', async () => /websocket\s*1/.test((await page.textContent('#transports'))!), 5000);
    const drawn = await page.$eval('#messages-chart', (canvas) => (canvas as HTMLCanvasElement).toDataURL().length);
    assert.ok(drawn > 1000, 'the chart is drawn');
    assert.deepEqual(problems, []);
  });
});
