/** `herald publish` and `herald subscribe` as a user runs them: real processes against a real Herald. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { startHerald } from '../helpers/herald.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const MAIN = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function run(args: string[], input?: string, env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, HERALD_URL: '', HERALD_PUBLISH_KEY: '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  if (input !== undefined) child.stdin!.end(input);
  else child.stdin!.end();
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

const lines = (text: string) => text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line));

describe('herald publish / subscribe', () => {
  test('subscribe prints what publish sends, as JSON lines, until interrupted', async (t) => {
    const { url, herald } = await startHerald(t, { historySize: 10 });
    const subscriber = run(['subscribe', '/stocks/**', '--url', url]);
    t.after(() => subscriber.child.kill('SIGKILL'));
    await waitFor('the subscription', () => subscriber.stderr().includes('"subscribed":"/stocks/**"'));

    const one = run(['publish', '/stocks/ACME', '{"symbol":"ACME","price":12.5}', '--url', url]);
    assert.equal(await one.exited, 0, one.stderr());
    const reply = lines(one.stdout())[0];
    assert.equal(reply.channel, '/stocks/ACME');
    assert.equal(reply.subscribers, 1);

    const piped = run(['publish', '/stocks/BOLT', '-', '--url', url], '{"price":1}\n\n{"price":2}\n');
    assert.equal(await piped.exited, 0, piped.stderr());
    assert.equal(lines(piped.stdout()).length, 2);

    await waitFor('three messages', () => lines(subscriber.stdout()).length === 3);
    const got = lines(subscriber.stdout());
    assert.deepEqual(got.map((m) => [m.channel, m.data]), [
      ['/stocks/ACME', { symbol: 'ACME', price: 12.5 }],
      ['/stocks/BOLT', { price: 1 }],
      ['/stocks/BOLT', { price: 2 }],
    ]);
    assert.equal(got[0].id, reply.id);
    assert.match(subscriber.stderr(), /"state":"connected","transport":"websocket"/);

    subscriber.child.kill('SIGINT');
    assert.equal(await withTimeout('subscribe to exit', subscriber.exited), 0);
    await waitFor('its session to end on the server', () => herald.stats().sessions === 0);
  });

  test('publish names what is wrong: bad JSON, a refused key, no server', async (t) => {
    const { url } = await startHerald(t, { publishKey: 'k'.repeat(20) });
    const badJson = run(['publish', '/a', '{nope', '--url', url]);
    assert.equal(await badJson.exited, 2);
    assert.match(badJson.stderr(), /the message is not JSON/);

    const badLine = run(['publish', '/a', '-', '--url', url, '--key', 'k'.repeat(20)], '1\n[oops\n');
    assert.equal(await badLine.exited, 2);
    assert.match(badLine.stderr(), /line 2 of standard input is not JSON/);
    assert.equal(lines(badLine.stdout()).length, 1, 'the good line before it went out');

    const wrongKey = run(['publish', '/a', '1', '--url', url], undefined, { HERALD_PUBLISH_KEY: 'x'.repeat(20) });
    assert.equal(await wrongKey.exited, 1);
    assert.match(wrongKey.stderr(), /HTTP 403/);

    const noServer = run(['publish', '/a', '1', '--url', 'http://127.0.0.1:1']);
    assert.equal(await noServer.exited, 1);
    assert.match(noServer.stderr(), /cannot reach http:\/\/127\.0\.0\.1:1/);

    const usage = run(['publish', '/a']);
    assert.equal(await usage.exited, 2);
    assert.match(usage.stderr(), /expected 2 arguments/);
  });

  test('subscribe exits 1 when the server refuses the subscription', async (t) => {
    const { url, herald } = await startHerald(t);
    herald.use({ incoming: (message) => (message.channel === '/meta/subscribe' ? { ...message, error: '403::subscribe_denied' } : message) });
    const subscriber = run(['subscribe', '/secret', '--url', url]);
    t.after(() => subscriber.child.kill('SIGKILL'));
    assert.equal(await withTimeout('subscribe to exit', subscriber.exited), 1);
    assert.match(subscriber.stderr(), /subscribe_denied/);
  });
});
