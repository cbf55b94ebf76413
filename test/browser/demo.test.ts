/** The demo pages `herald serve` shows at `/` and `/ticker`, in Chromium: two browsers chat and see who is here (real presence), a ticker is fed by `herald publish`. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { Herald } from '../../src/client/herald.js';
import { launchChromium } from '../helpers/browser.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startClientRig } from '../helpers/client-rig.js';
import { waitFor } from '../helpers/wait.js';

const MAIN = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));

/** A page in a browser of its own (its own cookies, no tab sharing), recording console errors (CSP violations among them). */
async function openDemo(browser: Browser, url: string, problems: string[]): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
  await page.goto(url);
  await page.waitForSelector('#status[data-state="connected"]');
  return page;
}

async function join(page: Page, name: string): Promise<void> {
  await page.fill('#name', name);
  await page.press('#name', 'Enter');
  await page.dispatchEvent('#name', 'change');
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

const messagesOn = (page: Page) =>
  page.$$eval('#messages .message', (rows) => rows.map((row) => `${row.querySelector('.user')!.textContent}: ${row.querySelector('.text')!.textContent}`));
const presenceOn = (page: Page) => page.$$eval('#presence li', (items) => items.map((item) => item.textContent!.trim()));

describe('demo pages', () => {
  test('two browsers chat in a room, see who is here, and a latecomer gets the history', async (t) => {
    const rig = await startClientRig(t, { demo: true, historySize: 100, presenceGraceMs: 300 });
    const browser = await launchChromium(t);
    const problems: string[] = [];
    const alice = await openDemo(browser, `${rig.origin}/#room=lobby`, problems);
    const bob = await openDemo(browser, `${rig.origin}/#room=lobby`, problems);
    await join(alice, 'alice');
    await join(bob, 'bob');
    assert.equal(await alice.getAttribute('#status', 'data-transport'), 'websocket', 'the transport in use is shown');

    await say(alice, 'hi bob <b>not bold</b>');
    await waitFor('bob to see alice', async () => (await messagesOn(bob)).includes('alice: hi bob <b>not bold</b>'));
    await say(bob, 'hello alice');
    await waitFor('alice to see bob', async () => (await messagesOn(alice)).includes('bob: hello alice'));
    assert.equal(await bob.$$eval('#messages b', (found) => found.length), 0, 'text is never markup');

    await waitFor('each in the other’s list', async () => (await presenceOn(alice)).includes('bob') && (await presenceOn(bob)).includes('alice'));
    // Real presence, not the pages' own chatter: the guests they were before renaming left (after
    // the grace window), and a client that is no demo page at all shows up by its handle, and leaves.
    await waitFor('only alice and bob', async () => JSON.stringify(await presenceOn(alice)) === JSON.stringify(['alice (you)', 'bob']));
    const dave = new Herald(`${rig.origin}/bayeux`, { shareConnection: false, WebSocket: WebSocket as never, ext: { herald: { info: { name: 'dave' } } } });
    onCleanup(t, () => dave.close());
    await dave.subscribe('/chat/lobby', () => {}).ready;
    await waitFor('dave in alice’s list', async () => (await presenceOn(alice)).includes('dave'));
    dave.close();
    await waitFor('dave gone from it', async () => !(await presenceOn(alice)).includes('dave'));

    const carol = await openDemo(browser, `${rig.origin}/#room=lobby`, problems);
    await waitFor('the history', async () => (await messagesOn(carol)).length === 2);
    assert.deepEqual(await messagesOn(carol), ['alice: hi bob <b>not bold</b>', 'bob: hello alice']);
    await say(bob, 'welcome carol');
    await waitFor('carol to see it live, once', async () => (await messagesOn(carol)).length === 3);

    // Another room is another channel.
    await bob.evaluate(() => (location.hash = '#room=dev'));
    await waitFor('bob in an empty room', async () => (await messagesOn(bob)).length === 0);
    await say(bob, 'only in dev');
    await say(alice, 'still in lobby');
    await waitFor('carol sees lobby only', async () => (await messagesOn(carol)).at(-1) === 'alice: still in lobby');
    assert.ok(!(await messagesOn(carol)).includes('bob: only in dev'));
    await waitFor('bob leaves alice’s list', async () => !(await presenceOn(alice)).includes('bob'));
    assert.deepEqual(problems, []);
  });

  test('the ticker shows quotes published with herald publish', async (t) => {
    const rig = await startClientRig(t, { demo: true });
    const browser = await launchChromium(t);
    const problems: string[] = [];
    const page = await openDemo(browser, `${rig.origin}/ticker`, problems);
    const publish = (json: string) => promisify(execFile)(process.execPath, [MAIN, 'publish', '/stocks/ACME', json, '--url', rig.origin]);
    await publish('{"symbol":"ACME","price":12.5}');
    await page.waitForSelector('#quotes tr[data-symbol="ACME"]');
    assert.equal(await page.textContent('#quotes tr[data-symbol="ACME"] .price'), '12.50');
    await publish('{"symbol":"ACME","price":13}');
    await waitFor('the new price', async () => (await page.textContent('#quotes tr[data-symbol="ACME"] .price')) === '13.00');
    assert.match((await page.textContent('#quotes tr[data-symbol="ACME"] .change')) ?? '', /^\+0\.50/);
    await rig.herald.publish('/stocks/ZED', { symbol: 'ZED', price: 'not a number' });
    await rig.herald.publish('/stocks/BOLT', { symbol: 'BOLT', price: 1 });
    await page.waitForSelector('#quotes tr[data-symbol="BOLT"]');
    assert.deepEqual(await page.$$eval('#quotes tbody tr', (rows) => rows.map((row) => (row as HTMLElement).dataset.symbol)), ['ACME', 'BOLT']);
    assert.deepEqual(problems, []);
  });
});
