/**
 * Publishes without a session are rate-limited per address, with --max-rate's semantics (issue
 * 15.6): a sessionless Bayeux publish and a REST publish by a token's holder. The backend (the
 * publish key) is not limited.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, postJson } from '../helpers/http.js';
import type { RawResponse } from '../helpers/http.js';

const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const PUBLISH_KEY = 'backend-key-0123456789';

async function limitCounts(port: number): Promise<any> {
  return (await httpRequest(port, { path: '/health' })).json().limits;
}

/** A POST from another loopback address (Linux routes all of 127/8 to lo). */
function postFrom(localAddress: string, port: number, path: string, body: unknown): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', localAddress, agent: false, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, elapsedMs: 0, json: () => JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('publish rate per address', () => {
  test('a flood of sessionless Bayeux publishes in one POST gets a burst of twice the rate; another address is unaffected', async (t) => {
    const { port } = await startHerald(t, { maxMessageRate: 20 });
    const flood = Array.from({ length: 1000 }, (_, i) => ({ channel: '/flood', data: i, id: `p${i}` }));
    const replies = (await postJson(port, '/bayeux', flood)).json();
    const accepted = replies.filter((m: any) => m.successful).length;
    assert.ok(accepted >= 40 && accepted <= 42, `a burst of twice the rate, got ${accepted}`);
    assert.equal(replies.find((m: any) => !m.successful).error, '429:20:too many messages per second');
    const elsewhere = (await postFrom('127.0.0.2', port, '/bayeux', [{ channel: '/flood', data: 'other', id: 'o' }])).json();
    assert.equal(elsewhere[0].successful, true, 'the bucket is the address’s, not the server’s');
    assert.ok((await limitCounts(port)).address_rate >= 958);
  });

  test('REST: the backend with the publish key is never limited; a token holder is, per address, with 429 and Retry-After', async (t) => {
    const { port } = await startHerald(t, { maxMessageRate: 5, publishKey: PUBLISH_KEY, jwtSecret: SECRET });
    const token = await new SignJWT({ publish: '/r/**' }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('1h').sign(Buffer.from(SECRET));
    const publishAs = (bearer: string) => httpRequest(port, { method: 'POST', path: '/pub/r/x', headers: { Authorization: `Bearer ${bearer}` }, body: 'hi' });
    for (let i = 0; i < 30; i++) assert.equal((await publishAs(PUBLISH_KEY)).status, 200, `backend publish ${i}`);
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await publishAs(token)).status);
    const allowed = statuses.filter((status) => status === 200).length;
    assert.ok(allowed >= 10 && allowed <= 12, `a burst of twice the rate, got ${allowed}`);
    const refused = await publishAs(token);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['retry-after'], '1');
    assert.match(refused.json().error, /too many messages per second from this address \(at most 5, bursts of 10\)/);
    assert.ok((await limitCounts(port)).address_rate >= 18);
  });

  test('--max-rate 0 leaves sessionless publishes unlimited too', async (t) => {
    const { port } = await startHerald(t, { maxMessageRate: 0 });
    const replies = (await postJson(port, '/bayeux', Array.from({ length: 300 }, (_, i) => ({ channel: '/free', data: i, id: `f${i}` })))).json();
    assert.ok(replies.every((m: any) => m.successful));
  });
});
