/**
 * Without a publish key, loopback clients act as the backend (publish, batch, `/admin/…`): a
 * default for `curl localhost`. But a web page open in a browser on the same machine is a
 * loopback client too, under loopback's own name — no DNS rebinding needed — and the default
 * allowed origins take every localhost port (`--allowed-origins '*'` takes every site). A
 * `text/plain` POST needs no preflight. So the browser's Origin and Sec-Fetch-Site decide: a page
 * of another origin never acts as the backend; curl and Herald's own pages still do.
 * And the dashboard's cookie, which holds the admin key URI-encoded, is read back decoded.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startHerald } from '../helpers/herald.js';
import { httpRequest } from '../helpers/http.js';
import type { RawResponse } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';

const until = () => Math.floor(Date.now() / 1000) + 3600;

/** Every backend action a page could try, each as the simplest request a browser lets it send. */
async function tryBackendActions(port: number, headers: Record<string, string>): Promise<[string, RawResponse][]> {
  const json = { ...headers, 'Content-Type': 'application/json' };
  const post = (path: string, body: string, extra = json) => httpRequest(port, { method: 'POST', path, headers: extra, body });
  const actions: Record<string, Promise<RawResponse>> = {
    'kick everyone': post('/admin/disconnect', JSON.stringify({ channel: '/**', reason: 'bye', reconnect: false })),
    revoke: post('/admin/revoke', JSON.stringify({ sub: 'victim', until: until() })),
    'server subscribe': post('/admin/subscribe', JSON.stringify({ user: 'victim', channel: '/stolen' })),
    'batch publish': post('/pub', JSON.stringify([{ channel: '/chat', data: 'forged' }])),
    'text/plain publish (no preflight)': post('/pub/chat', 'forged', { ...headers, 'Content-Type': 'text/plain' }),
    'read the channels': httpRequest(port, { path: '/admin/channels', headers }),
  };
  return Promise.all(Object.entries(actions).map(async ([action, pending]) => [action, await pending] as [string, RawResponse]));
}

async function subscribedSession(port: number): Promise<RawBayeux> {
  const peer = new RawBayeux(port);
  await peer.open();
  assert.equal((await peer.subscribe('/chat')).successful, true);
  return peer;
}

describe('without a publish key, pages of other origins on this machine are not the backend', () => {
  const pages: [string, string[] | undefined, (port: number) => Record<string, string>][] = [
    ['a page on another localhost port (allowed origin by default)', undefined, () => ({ Origin: 'http://localhost:3000', 'Sec-Fetch-Site': 'same-site' })],
    ['any site, when every origin is allowed', ['*'], () => ({ Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site' })],
    ['a browser that says cross-site but sends no Origin', undefined, () => ({ 'Sec-Fetch-Site': 'cross-site' })],
  ];
  for (const [who, allowedOrigins, headersFor] of pages) {
    test(`${who}: refused 403 at every door, and nobody is kicked`, async (t) => {
      const { port, herald } = await startHerald(t, allowedOrigins === undefined ? {} : { allowedOrigins });
      const victim = await subscribedSession(port);
      for (const [action, answer] of await tryBackendActions(port, headersFor(port))) {
        assert.equal(answer.status, 403, `${action}: ${answer.text}`);
        assert.match(answer.text, /only loopback clients may .*\(not web pages of other origins\)/, action);
      }
      assert.equal(herald.sessionCount, 1, 'the victim is still connected');
      assert.deepEqual((await victim.connect({ advice: { timeout: 0 } })).json().slice(1), [], 'nothing forged reached it');
    });
  }

  test('curl on this machine and Herald\'s own pages still act as the backend', async (t) => {
    const { port, herald } = await startHerald(t);
    await subscribedSession(port);
    const variants: Record<string, string>[] = [{}, { Origin: `http://127.0.0.1:${port}`, 'Sec-Fetch-Site': 'same-origin' }, { 'Sec-Fetch-Site': 'none' }];
    for (const headers of variants) {
      for (const [action, answer] of await tryBackendActions(port, headers)) {
        assert.equal(answer.status, 200, `${action} with ${JSON.stringify(headers)}: ${answer.text}`);
      }
    }
    assert.equal(herald.sessionCount, 0, 'the kick reached the session');
  });
});

describe('the dashboard cookie', () => {
  test('works with an admin key holding characters a cookie must encode (a base64 key)', async (t) => {
    const adminKey = 'Zm9vYmFy/+base64=key==';
    const { port } = await startHerald(t, { adminKey });
    const opened = await httpRequest(port, { path: `/dashboard?key=${encodeURIComponent(adminKey)}` });
    assert.equal(opened.status, 303);
    const cookie = String(opened.headers['set-cookie']).split(';')[0]!;
    const stats = await httpRequest(port, { path: '/dashboard/stats', headers: { Cookie: cookie } });
    assert.equal(stats.status, 200, stats.text);
    const wrong = await httpRequest(port, { path: '/dashboard/stats', headers: { Cookie: 'herald_admin=%E0%A4%A' } });
    assert.equal(wrong.status, 403, 'a cookie that does not decode is just a wrong key');
  });
});
