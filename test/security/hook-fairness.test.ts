/**
 * Decision hooks are bounded in concurrency (`--hook-concurrency` calls in flight, as many
 * waiting, the rest refused at once): a slow backend must not gather unbounded work. But the
 * bound is shared, and handshakes are not rate-limited before a session exists — so one client
 * address flooding handshakes, each with credentials of its own (no cache hit), held every slot
 * and every client elsewhere was refused `hook_unavailable`. One address now holds at most a
 * quarter of the calls in flight and waiting; the others keep the rest. Real Herald behind a trusted
 * proxy (X-Forwarded-For names the clients), real hook backend, raw Bayeux over HTTP.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startHerald } from '../helpers/herald.js';
import { startHookBackend } from '../helpers/hook-backend.js';
import { httpRequest } from '../helpers/http.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const HANDSHAKE = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] };

function handshakeFrom(port: number, address: string, credential: string): Promise<any> {
  const body = JSON.stringify([{ ...HANDSHAKE, id: '1', ext: { auth: { session: credential } } }]);
  return httpRequest(port, { method: 'POST', path: '/bayeux', headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': address }, body }).then((res) => res.json()[0]);
}

describe('hook calls are shared fairly between client addresses', () => {
  test('one address flooding handshakes against a slow backend does not deny the connect hook to others', async (t) => {
    const backend = await startHookBackend(t, () => ({ hang: true }));
    const concurrency = 8;
    const share = concurrency / 2; // a quarter of the slots and the queue together
    const { port } = await startHerald(t, { connectHook: backend.url, hookConcurrency: concurrency, hookTimeoutMs: 10_000, trustedProxies: ['127.0.0.1'] });
    // The flood: twice the slots and the queue together, each call a credential of its own.
    const flood = Array.from({ length: 4 * concurrency }, (_, i) => handshakeFrom(port, '203.0.113.66', `attacker-${i}`));
    // Past its share, refused at once (not left to wait for the backend, which never answers them).
    const refused = await withTimeout('the calls past its share are refused at once', Promise.all(flood.slice(share)), 3000);
    assert.ok(refused.every((reply) => /^503:.*203\.0\.113\.66.*:hook_unavailable$/.test(reply.error)), JSON.stringify(refused[0]));
    await waitFor('the flood holds its share of the slots', () => backend.inFlight() === share);
    // Someone else connects meanwhile, and is answered as soon as the backend is.
    const victim = handshakeFrom(port, '198.51.100.7', 'victim');
    await waitFor('the victim reaches the backend', () => backend.calls.some((call) => call.body.credentials?.auth?.session === 'victim'));
    backend.answer(() => ({ json: { allow: true } }));
    backend.release({ json: { allow: true } });
    assert.equal((await victim).successful, true);
    assert.ok((await Promise.all(flood.slice(0, share))).every((reply) => reply.successful === true), 'its share was answered');
  });
});
