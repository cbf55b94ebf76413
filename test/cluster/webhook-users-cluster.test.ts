/**
 * `user.online` / `user.offline` across three Herald nodes on one Redis, received by a real HTTP
 * backend verifying signatures: a user with tabs on every node comes online once and goes offline
 * once, again and again; a node killed with -9 makes the users it alone held go offline once,
 * after its liveness lapses and the grace window passes — and a user still connected on another
 * node not at all.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import { RedisEngine } from '../../src/engines/redis/redis-engine.js';
import type { HeraldOptions } from '../../src/server/create-herald.js';
import { startChildNode } from '../helpers/cluster.js';
import { startHookBackend, verifiedWebhook } from '../helpers/hook-backend.js';
import type { HookCall } from '../helpers/hook-backend.js';
import { startHerald } from '../helpers/herald.js';
import { openStream } from '../helpers/http.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const JWT_SECRET = 'users-secret-of-at-least-32-chars!!';
const WEBHOOK_SECRET = 'webhook-secret-0123456789';
const TTL_MS = 400;
const GRACE_MS = 500;

const token = (sub: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('1h').sign(Buffer.from(JWT_SECRET));
const users = (calls: readonly HookCall[]) => calls.flatMap((call) => call.body.events as { type: string; user: string }[]).map((event) => `${event.type} ${event.user}`);
const count = (calls: readonly HookCall[], line: string) => users(calls).filter((sent) => sent === line).length;

test('three Redis nodes: one online and one offline per transition; kill -9 takes offline, once, only the users it alone held', async (t) => {
  const redis = await startRedis(t);
  const backend = await startHookBackend(t, () => ({ json: {} }));
  const options: HeraldOptions = {
    jwtSecret: JWT_SECRET,
    permissions: { channels: [{ pattern: '/chat/**', subscribe: 'anyone', publish: 'anyone' }] },
    presenceGraceMs: GRACE_MS,
    presenceSweepMs: 150,
    webhookSecret: WEBHOOK_SECRET,
    webhookRetryMs: 20,
    webhooks: [{ url: backend.url, events: ['user.online', 'user.offline'] }],
  };
  const node = async () => {
    const engine = new RedisEngine({ url: redis.url, presenceTtlMs: TTL_MS });
    await engine.ready();
    return startHerald(t, { ...options, engine });
  };
  const [a, b] = [await node(), await node()];
  const c = await startChildNode(t, redis.url, options as Record<string, unknown>, { presenceTtlMs: TTL_MS, nodeId: 'doomed' });
  const ports = [a.port, b.port, c.port];
  const tab = async (port: number, sub: string) => openStream(port, `/sub/chat/room?token=${await token(sub)}`, { Accept: 'text/event-stream' }, t);

  // ada has a tab on every node, twice over: each time one online, one offline.
  for (let round = 1; round <= 2; round++) {
    const tabs = [];
    for (const port of ports) tabs.push(await tab(port, 'ada'));
    await waitFor('ada online', () => count(backend.calls, 'user.online ada') === round);
    for (const open of tabs) open.req.destroy();
    await waitFor('ada offline', () => count(backend.calls, 'user.offline ada') === round);
  }

  // eve is on the doomed node only; fay on it and on a.
  await tab(c.port, 'eve');
  await tab(c.port, 'fay');
  await tab(a.port, 'fay');
  await waitFor('eve and fay online', () => count(backend.calls, 'user.online eve') === 1 && count(backend.calls, 'user.online fay') === 1);
  await waitFor('nothing in flight', () => backend.inFlight() === 0);
  const killedAt = Date.now();
  c.kill();
  await waitFor('eve offline', () => count(backend.calls, 'user.offline eve') === 1);
  assert.ok(Date.now() - killedAt >= GRACE_MS, 'not before the grace window');
  // gus's window begins after eve went offline: once it has passed, so has any window fay could have begun.
  (await tab(b.port, 'gus')).req.destroy();
  await waitFor('gus offline', () => count(backend.calls, 'user.offline gus') === 1);
  await waitFor('nothing in flight', () => backend.inFlight() === 0);

  assert.deepEqual(
    users(backend.calls).filter((line) => !line.endsWith(' gus')),
    ['user.online ada', 'user.offline ada', 'user.online ada', 'user.offline ada', 'user.online eve', 'user.online fay', 'user.offline eve'],
    'once per transition in the cluster; fay, connected on a, never offline',
  );
  assert.ok(backend.calls.every((call) => verifiedWebhook(call, WEBHOOK_SECRET)));
});
