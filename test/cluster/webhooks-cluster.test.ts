/**
 * Webhooks across three `herald serve` processes on one Redis: the events the sending node owed
 * outlive it. Killed with -9 (or shut down) while the receiver answers 500, another node takes
 * the lease over and sends them all once the receiver recovers — each id once as a deduplicating
 * receiver counts, in order per channel, signed. Nor does the death of the node that saw the
 * events (and stored them) lose any.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { onCleanup } from '../helpers/cleanup.js';
import { startNode } from '../helpers/cluster.js';
import type { ClusterNode } from '../helpers/cluster.js';
import { startHookBackend } from '../helpers/hook-backend.js';
import type { HookBackend, HookCall } from '../helpers/hook-backend.js';
import { openStream } from '../helpers/http.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

type Hookable = { after(fn: () => unknown): void };
type Sent = { id: string; type: string; channel: string; at: number };

const SECRET = 'webhook-secret-0123456789';
const SENDS = 'webhooks: this node sends them';

function signed(call: HookCall): boolean {
  const [t, v1] = String(call.headers['herald-signature']).split(',').map((part) => part.slice(part.indexOf('=') + 1)) as [string, string];
  return v1 === createHmac('sha256', SECRET).update(`${t}.${call.raw}`).digest('hex');
}

/** The events as a receiver that drops ids it has seen keeps them: each once, in the order first received. */
function deduplicated(calls: readonly HookCall[]): Sent[] {
  const seen = new Map<string, Sent>();
  for (const event of calls.flatMap((call) => call.body.events as Sent[])) if (!seen.has(event.id)) seen.set(event.id, event);
  return [...seen.values()];
}

async function startCluster(t: Hookable, redisUrl: string, backend: HookBackend): Promise<ClusterNode[]> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-webhooks-'));
  onCleanup(t, () => rmSync(dir, { recursive: true, force: true }));
  const rules = join(dir, 'rules.json');
  writeFileSync(rules, JSON.stringify({ channels: [{ pattern: '/chat/**', subscribe: 'anyone', publish: 'anyone', presence: 'events' }] }));
  const args = ['--permissions', rules, '--presence-grace', '300ms', '--presence-sweep', '100ms', '--drain-window', '0', '--webhook-url', backend.url, '--webhook-secret', SECRET, '--webhook-retry', '10ms', '--webhook-attempts', '100'];
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await startNode(t, redisUrl, args));
  return nodes;
}

const sending = (node: ClusterNode) => node.logs.some((entry) => entry.message === SENDS);

const DEATHS = [
  { death: 'SIGKILL', of: 'sender', title: 'SIGKILL of the sending node while the receiver answers 500: another node sends every event, once per id, in order per channel' },
  { death: 'SIGTERM', of: 'sender', title: 'SIGTERM of the sending node while the receiver answers 500: another node sends every event, once per id, in order per channel' },
  { death: 'SIGKILL', of: 'witness', title: 'SIGKILL of the node that saw the events while the receiver answers 500: the sender still sends every event, in order per channel' },
] as const;

for (const { death, of, title } of DEATHS) {
  test(title, async (t) => {
    const redis = await startRedis(t);
    let failing = true;
    const accepted: HookCall[] = [];
    const backend = await startHookBackend(t, (call) => {
      if (failing) return { status: 500, json: {} };
      accepted.push(call);
      return { json: {} };
    });
    const nodes = await startCluster(t, redis.url, backend);
    const sender = await waitFor('one node sends', () => (nodes.filter(sending).length === 1 ? nodes.find(sending) : undefined));
    const [a, b] = nodes.filter((node) => node !== sender) as [ClusterNode, ClusterNode];

    // Members on the other nodes: three channels occupied, one of them vacated after the grace window.
    const leaving = await openStream(a.port, '/sub/chat/k1', { Accept: 'text/event-stream' }, t);
    await openStream(b.port, '/sub/chat/k2', { Accept: 'text/event-stream' }, t);
    await openStream(a.port, '/sub/chat/k3', { Accept: 'text/event-stream' }, t);
    leaving.req.destroy();
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    await waitFor('four events stored in Redis', async () => (await admin.xlen('herald:outbox:webhooks')) === 4);
    await waitFor('the receiver failed a batch and was sent it again', () => backend.calls.length >= 2);
    assert.ok(backend.calls.every((call) => signed(call)));

    const victim = of === 'sender' ? sender : a;
    if (death === 'SIGKILL') await victim.kill();
    else {
      const exited = once(victim.child, 'exit');
      victim.child.kill('SIGTERM');
      await exited;
    }
    const failedCalls = backend.calls.length;
    failing = false;
    await waitFor('every event taken', () => deduplicated(accepted).length === 4, 15_000);
    await waitFor('no request in flight', () => backend.inFlight() === 0);

    assert.ok(backend.calls.length > failedCalls, 'sent after the death');
    if (of === 'sender') {
      assert.equal(accepted.length, 1, 'in one batch, by the next holder of the lease');
      assert.equal([a, b].filter(sending).length, 1, 'one of the others took the lease over');
    }
    const events = deduplicated(accepted);
    assert.deepEqual(events.map((event) => `${event.type} ${event.channel}`).sort(), ['channel.occupied /chat/k1', 'channel.occupied /chat/k2', 'channel.occupied /chat/k3', 'channel.vacated /chat/k1']);
    const k1 = events.filter((event) => event.channel === '/chat/k1').map((event) => event.type);
    assert.deepEqual(k1, ['channel.occupied', 'channel.vacated'], 'in order per channel');
    // What the dead node had in flight is sent again, with the same ids.
    const failedIds = new Set(backend.calls.slice(0, failedCalls).flatMap((call) => (call.body.events as Sent[]).map((event) => event.id)));
    assert.ok([...failedIds].every((id) => events.some((event) => event.id === id)));
    assert.ok(backend.calls.every((call) => signed(call)));
  });
}
