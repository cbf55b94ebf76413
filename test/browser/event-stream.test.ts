/** A browser subscribes with nothing but EventSource, and loses nothing when its stream is cut. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBrowserRig } from '../helpers/browser.js';
import { httpRequest } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

test('an EventSource on /sub receives POST /pub messages, survives a cut stream and resumes without loss', async (t) => {
  const { page, port, herald, cutSubStreams } = await startBrowserRig(t, { timeoutMs: 10_000 });
  await page.evaluate(() => {
    const g = globalThis as any;
    g.received = [];
    g.opens = 0;
    const source = new g.EventSource('/sub/live');
    source.onopen = () => g.opens++;
    source.onmessage = (event: any) => g.received.push(JSON.parse(event.data).data);
  });
  const received = () => page.evaluate(() => (globalThis as any).received as number[]);
  const opens = () => page.evaluate(() => (globalThis as any).opens as number);
  const publish = (n: number) => httpRequest(port, { method: 'POST', path: '/pub/live', headers: { 'Content-Type': 'application/json' }, body: String(n) });

  await waitFor('the stream to open', async () => (await opens()) === 1 && herald.stats().patterns === 1);
  for (let n = 0; n < 5; n++) await publish(n);
  await waitFor('the first five', async () => (await received()).length === 5);

  assert.equal(cutSubStreams(), 1);
  await waitFor('the server to notice', () => herald.stats().patterns === 0);
  for (let n = 5; n < 10; n++) await publish(n); // published while the browser is cut off
  await waitFor('the browser to reconnect', async () => (await opens()) === 2, 15_000);
  for (let n = 10; n < 12; n++) await publish(n);
  await waitFor('every message', async () => (await received()).length >= 12, 15_000);
  assert.deepEqual(await received(), Array.from({ length: 12 }, (_, n) => n), 'each once, in order');
});
