/**
 * Webhooks of users and of what sessions do, received by a real HTTP backend on 127.0.0.1 that
 * verifies every signature: `user.online` when a user's first session opens, `user.offline` once
 * its last one has been gone for the grace window — two tabs are one user, a reconnect within the
 * window says nothing, anonymous sessions are not users — also told to `herald.on('online' |
 * 'offline')`; `subscribe`, `unsubscribe` and `publish` reach only the receivers whose filter
 * names them, carrying channel, session, user, message id (never the data).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import type { HeraldOptions } from '../../src/server/create-herald.js';
import { startHookBackend, verifiedWebhook } from '../helpers/hook-backend.js';
import type { HookCall } from '../helpers/hook-backend.js';
import { startHerald } from '../helpers/herald.js';
import { openStream, postJson } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const WEBHOOK_SECRET = 'webhook-secret-0123456789';
const JWT_SECRET = 'users-secret-of-at-least-32-chars!!';
const GRACE_MS = 300;
const OPTIONS: HeraldOptions = {
  jwtSecret: JWT_SECRET,
  permissions: { channels: [{ pattern: '/chat/**', subscribe: 'anyone', publish: 'anyone' }] },
  presenceGraceMs: GRACE_MS,
  presenceSweepMs: 100,
  webhookSecret: WEBHOOK_SECRET,
  webhookRetryMs: 20,
};

const token = (sub: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('1h').sign(Buffer.from(JWT_SECRET));

const verified = (call: HookCall): boolean => verifiedWebhook(call, WEBHOOK_SECRET);

type Sent = { id: string; type: string; at: number; channel?: string; user?: string; session?: string; messageId?: string; data?: unknown };
const eventsOf = (calls: readonly HookCall[]): Sent[] => calls.flatMap((call) => call.body.events as Sent[]);
const users = (calls: readonly HookCall[]) => eventsOf(calls).filter((event) => event.type.startsWith('user.')).map((event) => `${event.type} ${event.user}`);

/** A session of `sub` (anonymous without one) by SSE: open while the stream is. */
async function tab(t: { after(fn: () => unknown): void }, port: number, sub?: string, channel = '/chat/a') {
  const query = sub === undefined ? '' : `?token=${await token(sub)}`;
  return openStream(port, `/sub${channel}${query}`, { Accept: 'text/event-stream' }, t);
}

describe('user.online and user.offline on one node', () => {
  test('two tabs are one user: one online, one offline after the grace window; signed; herald.on hears them too', async (t) => {
    const backend = await startHookBackend(t, () => ({ json: {} }));
    const { port, herald } = await startHerald(t, { ...OPTIONS, webhooks: [backend.url] });
    const inCode: string[] = [];
    herald.on('online', ({ subject }) => inCode.push(`online ${subject}`));
    herald.on('offline', ({ subject }) => inCode.push(`offline ${subject}`));

    const first = await tab(t, port, 'ada');
    await waitFor('online', () => users(backend.calls).includes('user.online ada'));
    const second = await tab(t, port, 'ada', '/chat/b');
    const anonymous = await tab(t, port);
    first.req.destroy();
    second.req.destroy();
    anonymous.req.destroy();
    await waitFor('offline', () => users(backend.calls).includes('user.offline ada'));
    await waitFor('no request in flight', () => backend.inFlight() === 0);

    assert.deepEqual(users(backend.calls), ['user.online ada', 'user.offline ada'], 'one user, one online, one offline; the anonymous session is no user');
    assert.deepEqual(inCode, ['online ada', 'offline ada']);
    const [online, offline] = eventsOf(backend.calls) as [Sent, Sent];
    assert.ok(offline.at - online.at >= GRACE_MS, 'offline only after the grace window');
    assert.notEqual(online.id, offline.id);
    assert.ok(backend.calls.every(verified));
  });

  test('a reconnect within the grace window is neither offline nor online', async (t) => {
    const backend = await startHookBackend(t, () => ({ json: {} }));
    const { port } = await startHerald(t, { ...OPTIONS, webhooks: [{ url: backend.url, events: ['user.online', 'user.offline'] }] });
    let session = await tab(t, port, 'bob');
    await waitFor('online', () => users(backend.calls).length === 1);
    for (let i = 0; i < 3; i++) {
      session.req.destroy();
      session = await tab(t, port, 'bob');
    }
    // Offline of another user, whose window began after bob's last reconnect, marks bob's window passed too.
    (await tab(t, port, 'cy')).req.destroy();
    await waitFor('cy offline', () => users(backend.calls).includes('user.offline cy'));
    assert.deepEqual(users(backend.calls), ['user.online bob', 'user.online cy', 'user.offline cy']);
  });
});

describe('subscribe, unsubscribe and publish', () => {
  test('sent only to receivers that name them: channel, session, user and message id, never the data', async (t) => {
    const named = await startHookBackend(t, () => ({ json: {} }));
    const unfiltered = await startHookBackend(t, () => ({ json: {} }));
    const { port } = await startHerald(t, { ...OPTIONS, webhooks: [{ url: named.url, events: ['subscribe', 'unsubscribe', 'publish'] }, unfiltered.url] });
    const subscriber = await tab(t, port, 'dee', '/chat/news');
    await waitFor('subscribe', () => eventsOf(named.calls).some((event) => event.type === 'subscribe'));
    const published = await postJson(port, '/pub/chat/news', { secret: 'not for the webhook' });
    assert.equal(published.status, 200, published.text);
    subscriber.req.destroy();
    await waitFor('unsubscribe', () => eventsOf(named.calls).some((event) => event.type === 'unsubscribe'));
    await waitFor('publish', () => eventsOf(named.calls).some((event) => event.type === 'publish'));
    await waitFor('dee offline (the unfiltered receiver)', () => users(unfiltered.calls).includes('user.offline dee'));

    const got = eventsOf(named.calls);
    const subscribe = got.find((event) => event.type === 'subscribe')!;
    const unsubscribe = got.find((event) => event.type === 'unsubscribe')!;
    const publish = got.find((event) => event.type === 'publish')!;
    assert.equal(subscribe.channel, '/chat/news');
    assert.equal(subscribe.user, 'dee');
    assert.match(subscribe.session!, /\S/);
    assert.equal(unsubscribe.session, subscribe.session);
    assert.deepEqual({ channel: publish.channel, messageId: publish.messageId }, { channel: '/chat/news', messageId: published.json().id });
    assert.equal(JSON.stringify(got).includes('not for the webhook'), false, 'no data');
    assert.deepEqual(users(named.calls), [], 'user events were not named');
    assert.deepEqual(eventsOf(unfiltered.calls).map((event) => event.type), ['user.online', 'user.offline'], 'the default: no subscribe, unsubscribe or publish');
    assert.ok([...named.calls, ...unfiltered.calls].every(verified));
  });
});
