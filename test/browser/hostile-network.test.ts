/**
 * The Herald client in Chromium behind networks that break held requests (issue 19): a proxy
 * that cuts every request it held for 2 s (interval polling), one that buffers streamed bodies
 * (held long-polls), and smart intervals — a hidden page polls less often, and a message or the
 * page showing again snaps it back. Requests are counted at the proxy.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { BLANK_PAGE, openPage, received, startClientRig, startPageClient, transportOf } from '../helpers/client-rig.js';
import { startHostileProxy } from '../helpers/hostile-proxy.js';
import type { HostileProxy } from '../helpers/hostile-proxy.js';
import { waitFor } from '../helpers/wait.js';

const FAST = { shareConnection: false, maxNetworkDelayMs: 1000, pollIntervalMs: 200, backoff: { initialMs: 50, maxMs: 200 } };
const inOrder = (count: number) => Array.from({ length: count }, (_, i) => i + 1);
const polling = (page: Page): Promise<boolean> => page.evaluate(() => (globalThis as any).client.polling);

/** Shows or hides the page as the Page Visibility API would tell it (headless pages are always visible). */
function setVisibility(page: Page, state: 'visible' | 'hidden'): Promise<void> {
  return page.evaluate((state) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => state === 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  }, state);
}

/** Milliseconds between the connects the proxy saw from index `from` on. */
const gapsFrom = (proxy: HostileProxy, from: number) => proxy.connects.slice(from).map((at, i, all) => (i === 0 ? 0 : at - all[i - 1]!)).slice(1);

describe('Herald client in Chromium, on hostile networks', () => {
  test('held requests cut after 2 s: the page settles on interval polling and gets every message once, in order', async (t) => {
    const rig = await startClientRig(t, { historySize: 100 });
    const proxy = await startHostileProxy(t, rig.port, { cutAfterMs: 2000 });
    const browser = await launchChromium(t);
    const page = await openPage(await browser.newContext(), proxy.origin + BLANK_PAGE);
    await startPageClient(page, '/bayeux', '/news', FAST);
    let published = 0;
    const publish = async (times: number) => {
      for (let i = 0; i < times; i++) await rig.herald.publish('/news', ++published);
    };
    await publish(2);
    // A message after each cut, published while the page reconnects: it comes by resume.
    let cutsSeen = 0;
    await waitFor(
      'interval polling',
      async () => {
        if (proxy.cuts > cutsSeen) {
          cutsSeen = proxy.cuts;
          await publish(1);
        }
        return polling(page);
      },
      25_000,
    ).catch(async (error) => {
      console.log('cuts', proxy.cuts, JSON.stringify(await page.evaluate(() => (globalThis as any).states)));
      throw error;
    });
    assert.ok(proxy.cuts >= 3, `${proxy.cuts} cuts`);
    assert.ok(['long-polling', 'callback-polling'].includes((await transportOf(page))!));
    await publish(5);
    await waitFor('every message', async () => (await received(page)).length >= published);
    assert.deepEqual(await received(page), inOrder(published));
  });

  test('a proxy that buffers streamed bodies: WebSocket and EventSource deliver nothing, the page settles on held long-polls', async (t) => {
    const rig = await startClientRig(t, { historySize: 100 });
    const proxy = await startHostileProxy(t, rig.port, { buffer: true });
    const browser = await launchChromium(t);
    const page = await openPage(await browser.newContext(), proxy.origin + BLANK_PAGE);
    await startPageClient(page, '/bayeux', '/news', FAST);
    assert.equal(await transportOf(page), 'long-polling');
    assert.equal(await polling(page), false);
    const tried = await page.evaluate(() => (globalThis as any).states.map(([, transport]: [string, string | null]) => transport));
    assert.deepEqual(tried.filter((transport: string | null) => transport !== null), ['long-polling']);
    for (let n = 1; n <= 10; n++) await rig.herald.publish('/news', n);
    await waitFor('every message', async () => (await received(page)).length >= 10);
    assert.deepEqual(await received(page), inOrder(10));
  });

  test('a hidden page polls less and less often; a message, or the page showing again, snaps it back', async (t) => {
    const rig = await startClientRig(t, { maxIntervalMs: 10_000 });
    const proxy = await startHostileProxy(t, rig.port, {});
    const browser = await launchChromium(t);
    const page = await openPage(await browser.newContext(), proxy.origin + BLANK_PAGE);
    await startPageClient(page, '/bayeux', '/news', { ...FAST, intervalPolling: 'always', maxPollIntervalMs: 3200 });
    assert.equal(await polling(page), true);

    let from = proxy.connects.length;
    await waitFor('five polls while visible', () => proxy.connects.length >= from + 5);
    assert.ok(Math.max(...gapsFrom(proxy, from)) < 600, `visible: ${gapsFrom(proxy, from).join(', ')} ms apart`);

    await setVisibility(page, 'hidden');
    from = proxy.connects.length;
    await waitFor('the interval to reach its ceiling', () => gapsFrom(proxy, from).some((gap) => gap >= 3000), 15_000);
    const hidden = gapsFrom(proxy, from);
    const span = hidden.reduce((sum, gap) => sum + gap, 0);
    // Visible, the same span would have taken span / 200 polls.
    assert.ok(hidden.length <= 7 && hidden.length < span / 200 / 4, `hidden: ${hidden.length + 1} polls over ${span} ms (${hidden.join(', ')} ms apart)`);

    // A message arrives (on the next poll): the poll after it comes at the short interval again.
    await rig.herald.publish('/news', 'hello');
    await waitFor('the message', async () => (await received(page)).length === 1, 10_000);
    from = proxy.connects.length;
    await waitFor('the poll after the message', () => proxy.connects.length >= from + 1, 5000);
    const afterMessage = proxy.connects[from]!;
    // (The poll that carried the message was at most 3.2 s after the one before; this one follows at once.)
    assert.ok(afterMessage - proxy.connects[from - 1]! < 600, `after the message: ${afterMessage - proxy.connects[from - 1]!} ms`);

    // Let it grow again while hidden, then show the page: it polls at once, not at the end of the long wait.
    from = proxy.connects.length;
    await waitFor('the interval to grow again', () => gapsFrom(proxy, from).some((gap) => gap >= 1600), 15_000);
    const lastPoll = proxy.connects.length;
    await setVisibility(page, 'visible');
    const shownAt = Date.now();
    await waitFor('a poll once shown', () => proxy.connects.length > lastPoll, 5000);
    assert.ok(proxy.connects[lastPoll]! - shownAt < 600, `polled ${proxy.connects[lastPoll]! - shownAt} ms after showing`);
    from = proxy.connects.length;
    await waitFor('four polls while visible again', () => proxy.connects.length >= from + 4);
    assert.ok(Math.max(...gapsFrom(proxy, from)) < 600, `visible again: ${gapsFrom(proxy, from).join(', ')} ms apart`);
  });
});
