/**
 * A small-heap server under a flood of large sessionless publishes (issue 15.6): before the memory
 * budget, 69 requests of 130 KB publishes across 50 channels ended a `--max-old-space-size=128`
 * process. Now history gives back its oldest channels (resumers get a gap signal), the process
 * lives, and everyone else is still served.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { httpRequest, postJson } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const MAIN = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));
const REQUESTS = 100;
const PER_REQUEST = 7; // 7 × 130 KB: just under the 1 MiB body limit
const CHANNELS = 50;

test('a 128 MB heap survives 100 requests of sessionless 130 KB publishes across 50 channels and still serves others', async (t) => {
  // --max-rate 0: the budget, not the per-address rate, must be what holds (an attacker has many addresses).
  const child = spawn(process.execPath, ['--max-old-space-size=128', MAIN, 'serve', '--port', '0', '--max-rate', '0', '--demo', 'off', '--log-level', 'info'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let output = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await waitFor('the listening line', () => {
    if (child.exitCode !== null) assert.fail(`the server did not start:\n${output}`);
    const match = /"port":(\d+).*"message":"listening"/.exec(output);
    return match === null ? undefined : Number(match[1]);
  });

  const payload = 'x'.repeat(130_000);
  let sent = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const batch = Array.from({ length: PER_REQUEST }, (_, j) => ({ channel: `/flood/${(i * PER_REQUEST + j) % CHANNELS}`, data: payload }));
    const reply = await postJson(port, '/bayeux', batch).catch(async (error: Error) => {
      await withTimeout('the server to exit', exited, 2000).catch(() => undefined);
      return assert.fail(`the server stopped answering after ${sent} requests (${error.message}):\n${output.slice(-1500)}`);
    });
    assert.equal(reply.status, 200);
    sent++;
  }

  const listener = new RawBayeux(port);
  await listener.open();
  await listener.subscribe('/calm');
  const speaker = new RawBayeux(port);
  await speaker.open();
  assert.equal((await speaker.publish('/calm', { text: 'still here' }))[0].successful, true);
  const heard = await listener.connect();
  assert.match(heard.text, /still here/);

  const health = (await httpRequest(port, { path: '/health' })).json();
  assert.ok(health.memory.historyBytes + health.memory.queueBytes <= health.memory.budgetBytes, JSON.stringify(health.memory));
  assert.ok(health.limits.memory_history > 0, 'the budget forgot history');
  const metrics = (await httpRequest(port, { path: '/metrics' })).text;
  const evicted = /herald_memory_evictions_total\{account="history"\} (\d+)/.exec(metrics);
  assert.ok(evicted !== null && Number(evicted[1]) > 0, 'the metric shows the evictions');
  assert.match(metrics, /herald_memory_bytes\{account="history"\} \d+/);
  assert.equal(child.exitCode, null, 'alive');
});
