/**
 * The Herald client in Chromium: fallback when WebSocket is refused or the origin is not allowed,
 * a server restart mid-session, and tabs sharing one connection across a change of leader.
 * (The demo chat between two browsers is in demo.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { launchChromium } from '../helpers/browser.js';
import { BLANK_PAGE, openPage, received, startClientRig, startPageClient, transportOf } from '../helpers/client-rig.js';
import { waitFor } from '../helpers/wait.js';

describe('Herald client in Chromium', () => {
  test('with WebSocket refused by the server, the client falls back to EventSource and still delivers', async (t) => {
    const rig = await startClientRig(t, { historySize: 50 });
    rig.refuseUpgrades = true;
    const browser = await launchChromium(t);
    const page = await openPage(await browser.newContext(), rig.origin + BLANK_PAGE);
    await startPageClient(page, '/bayeux', '/chat/a');
    assert.equal(await transportOf(page), 'eventsource');
    assert.ok(rig.upgradesSeen >= 1, 'it tried WebSocket first');
    for (let i = 1; i <= 20; i++) await rig.herald.publish('/chat/a', i);
    await waitFor('20 messages', async () => (await received(page)).length === 20);
    assert.deepEqual(await received(page), Array.from({ length: 20 }, (_, i) => i + 1));
    // The page publishes too, over the same fallback.
    await page.evaluate(() => (globalThis as any).client.publish('/chat/a', 'from the page'));
    await waitFor('its own message', async () => (await received(page)).length === 21);
  });

  test('against a cross-origin server that does not allow the page, callback-polling gets through', async (t) => {
    // Herald on 127.0.0.1 allows no other origin; the page comes from 127.0.0.2.
    const herald = await startClientRig(t, { allowedOrigins: ['https://elsewhere.example'] });
    const page = await startClientRig(t, {}, '127.0.0.2');
    const browser = await launchChromium(t);
    const tab = await openPage(await browser.newContext(), page.origin + BLANK_PAGE);
    await startPageClient(tab, `${herald.origin}/bayeux`, '/chat/a');
    assert.equal(await transportOf(tab), 'callback-polling');
    await herald.herald.publish('/chat/a', 'over jsonp');
    await tab.evaluate(() => (globalThis as any).client.publish('/chat/a', 'published over jsonp'));
    await waitFor('both messages', async () => (await received(tab)).length === 2);
    assert.deepEqual(await received(tab), ['over jsonp', 'published over jsonp']);
  });

  test('after a server restart the page reconnects and receives what was published during the outage', async (t) => {
    const rig = await startClientRig(t, { historySize: 50 });
    const browser = await launchChromium(t);
    const page = await openPage(await browser.newContext(), rig.origin + BLANK_PAGE);
    await startPageClient(page, '/bayeux', '/chat/a');
    assert.equal(await transportOf(page), 'websocket');
    await rig.herald.publish('/chat/a', 'before');
    await waitFor('the first message', async () => (await received(page)).length === 1);
    await rig.restart(async (next) => {
      await next.publish('/chat/a', 'during 1');
      await next.publish('/chat/a', 'during 2');
    });
    await waitFor('the outage messages', async () => (await received(page)).length === 3, 15_000);
    await rig.herald.publish('/chat/a', 'after');
    await waitFor('the message after', async () => (await received(page)).length === 4);
    assert.deepEqual(await received(page), ['before', 'during 1', 'during 2', 'after']);
    const states: [string, string | null][] = await page.evaluate(() => (globalThis as any).states);
    assert.ok(states.some(([state]) => state === 'reconnecting'));
    // If it came back while the server was still starting, it may have settled for a lesser
    // transport; WebSocket worked before, so it is soon tried again.
    await waitFor('WebSocket again', async () => (await transportOf(page)) === 'websocket', 10_000);
    await rig.herald.publish('/chat/a', 'last');
    await waitFor('the last message', async () => (await received(page)).length === 5);
    assert.deepEqual((await received(page)).slice(3), ['after', 'last']);
  });

  test('three tabs share one server connection and survive closing the leader tab', async (t) => {
    const rig = await startClientRig(t, { historySize: 200, maxIntervalMs: 1000 });
    const browser = await launchChromium(t);
    const context = await browser.newContext();
    const leader = await openPage(context, rig.origin + BLANK_PAGE);
    await startPageClient(leader, '/bayeux', '/chat/a');
    const followers = [await openPage(context, rig.origin + BLANK_PAGE), await openPage(context, rig.origin + BLANK_PAGE)];
    for (const page of followers) await startPageClient(page, '/bayeux', '/chat/a');
    for (const page of followers) assert.equal(await transportOf(page), 'websocket', "a follower shows the leader's transport");
    assert.equal(rig.herald.stats().sessions, 1, 'one session for three tabs');
    assert.equal(rig.herald.stats().webSockets, 1, 'one connection for three tabs');

    let sent = 0;
    const publish = async (count: number) => {
      for (let i = 0; i < count; i++) await rig.herald.publish('/chat/a', ++sent);
    };
    await publish(10);
    for (const page of [leader, ...followers]) await waitFor('ten messages in every tab', async () => (await received(page)).length === 10);

    // The leader goes while messages keep coming: one of the others takes over and resumes.
    const publishing = (async () => {
      while (sent < 60) {
        await publish(1);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    await leader.close();
    await publishing;
    for (const page of followers) {
      await waitFor('every message, in the tabs left', async () => (await received(page)).length === sent, 15_000);
      assert.deepEqual(await received(page), Array.from({ length: sent }, (_, i) => i + 1), 'each message once, in order');
    }
    await waitFor('one session again', () => rig.herald.stats().sessions === 1 && rig.herald.stats().webSockets === 1, 10_000);
    // Both remaining tabs can still publish through the new leader.
    for (const [n, page] of followers.entries()) await page.evaluate((n) => (globalThis as any).client.publish('/chat/a', `tab ${n}`), n);
    for (const page of followers) await waitFor('both tabs’ messages', async () => (await received(page)).length === sent + 2);
  });

  test('a tab that joins a channel another tab holds, from a history id, gets what came after it', async (t) => {
    const rig = await startClientRig(t, { historySize: 50 });
    const browser = await launchChromium(t);
    const context = await browser.newContext();
    const leader = await openPage(context, rig.origin + BLANK_PAGE);
    await startPageClient(leader, '/bayeux', '/chat/lobby');
    const other = await openPage(context, rig.origin + BLANK_PAGE);
    await startPageClient(other, '/bayeux', '/chat/dev');
    await rig.herald.publish('/chat/lobby', 'old');
    // As the demo joins a room: history first, then a subscription from its last id. A message
    // relayed in between (the leader's subscription) must not count as seen by this tab.
    const lastId: string = await other.evaluate(async () => (await (globalThis as any).client.history('/chat/lobby')).messages.at(-1).id);
    await rig.herald.publish('/chat/lobby', 'in between');
    await waitFor('the leader to have it', async () => (await received(leader)).length === 2);
    await other.evaluate(
      (since) =>
        new Promise<void>((resolve) => {
          const w = globalThis as any;
          w.lobby = [];
          w.client.subscribe('/chat/lobby', (data: unknown) => w.lobby.push(data), { since }).ready.then(resolve);
        }),
      lastId,
    );
    await rig.herald.publish('/chat/lobby', 'after');
    await waitFor('both messages in the joining tab', async () => (await other.evaluate(() => (globalThis as any).lobby.length)) === 2);
    assert.deepEqual(await other.evaluate(() => (globalThis as any).lobby), ['in between', 'after']);
    assert.deepEqual(await received(leader), ['old', 'in between', 'after'], 'the leader sees nothing twice');
    assert.equal(rig.herald.stats().sessions, 1);
  });
  test('herald.fetch: the application’s validation reply brings the chat message, with no request of its own', async (t) => {
    // Polls 20 s apart: the message can only come on the application's reply.
    const rig = await startClientRig(t, { timeoutMs: 10, intervalMs: 20_000 });
    const sessions: (string | undefined)[] = [];
    rig.app = (req, res) => {
      if (req.url !== '/validate') return false;
      sessions.push(req.headers['herald-session'] as string | undefined);
      res.statusCode = 422;
      rig.herald.piggyback(req, res, { valid: false, field: 'name' });
      return true;
    };
    const browser = await launchChromium(t);
    const page = await openPage(await browser.newContext(), rig.origin + BLANK_PAGE);
    await startPageClient(page, '/bayeux', '/chat/a', { transports: ['long-polling'] });
    await rig.herald.publish('/chat/a', 'while you type');
    const plain = await page.evaluate(async () => (await fetch('/validate', { method: 'POST', body: '{}' })).json());
    assert.deepEqual(plain, { valid: false, field: 'name' }, 'a plain fetch gets the body as it is');
    assert.deepEqual(await received(page), []);
    const answer = await page.evaluate(async () => {
      const response = await (globalThis as any).client.fetch('/validate', { method: 'POST', body: '{"name":""}' });
      // Delivered before the caller sees its answer.
      return { status: response.status, body: await response.json(), received: [...(globalThis as any).received] };
    });
    assert.deepEqual(answer, { status: 422, body: { valid: false, field: 'name' }, received: ['while you type'] });
    assert.equal(sessions[0], undefined);
    assert.equal(typeof sessions[1], 'string');
  });
});
