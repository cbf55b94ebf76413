/**
 * Every limit refuses with an error that names it, and counts the refusal (/health `limits`);
 * origins are checked on every door; cookies and client ids give nothing away.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { createHerald } from '../../src/server/create-herald.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, postJson } from '../helpers/http.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';
import { waitFor } from '../helpers/wait.js';

async function limitCounts(port: number): Promise<any> {
  return (await httpRequest(port, { path: '/health' })).json().limits;
}

describe('limits', () => {
  test('message size: a Bayeux or REST publish over maxMessageBytes is refused naming both sizes', async (t) => {
    const { port } = await startHerald(t, { maxMessageBytes: 1000 });
    const client = new RawBayeux(port);
    await client.open();
    const [reply] = await client.publish('/big', 'x'.repeat(1000));
    assert.equal(reply.successful, false);
    assert.equal(reply.error, '413:1002,1000:message too large (bytes; most allowed)');
    assert.equal((await client.publish('/big', 'x'.repeat(990)))[0].successful, true);
    const rest = await httpRequest(port, { method: 'POST', path: '/pub/big', body: 'y'.repeat(1200) });
    assert.equal(rest.status, 413);
    assert.match(rest.json().error, /message too large: 1202 bytes as JSON, at most 1000/);
    assert.equal((await limitCounts(port)).message_size, 2);
  });

  test('request body size: 413 over HTTP, close 1009 over WebSocket, both counted', async (t) => {
    const { default: WebSocket } = await import('ws');
    const { port } = await startHerald(t, { maxBodyBytes: 2048 });
    const big = JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], pad: 'x'.repeat(4096) }]);
    const res = await httpRequest(port, { method: 'POST', path: '/bayeux', headers: { 'Content-Type': 'application/json' }, body: big });
    assert.equal(res.status, 413);
    assert.match(res.json().error, /exceeds 2048 bytes/);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/bayeux`);
    ws.on('error', () => {});
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(big);
    const [code] = await new Promise<[number]>((resolve) => ws.once('close', (c) => resolve([c])));
    assert.equal(code, 1009);
    await waitFor('both refusals counted', async () => (await limitCounts(port)).body_size === 2);
  });

  test('message rate: a client past its burst is refused with 429 until its bucket refills', async (t) => {
    const { port } = await startHerald(t, { maxMessageRate: 20 });
    const client = new RawBayeux(port);
    await client.open();
    const replies = await client.send(Array.from({ length: 45 }, (_, i) => ({ channel: '/fast', data: i, clientId: client.clientId, id: `p${i}` })));
    const results = replies.json().filter((m: any) => m.channel === '/fast');
    const accepted = results.filter((m: any) => m.successful).length;
    assert.ok(accepted >= 40 && accepted <= 42, `a burst of twice the rate, got ${accepted}`);
    const refused = results.find((m: any) => !m.successful);
    assert.equal(refused.error, '429:20:too many messages per second');
    assert.equal((await client.subscribe('/x')).error, '429:20:too many messages per second', 'subscribes count too');
    await waitFor('the bucket to refill', async () => (await client.publish('/fast', 'again'))[0].successful === true, 2000);
    assert.ok((await limitCounts(port)).message_rate >= 4);
  });

  test('subscriptions per session', async (t) => {
    const { port } = await startHerald(t, { maxSubscriptions: 3 });
    const client = new RawBayeux(port);
    await client.open();
    assert.equal((await client.subscribe(['/a', '/b', '/c'])).successful, true);
    assert.equal((await client.subscribe('/d')).error, '403:3:too many subscriptions for one session');
    await client.send([{ channel: '/meta/unsubscribe', clientId: client.clientId, subscription: '/a', id: 'u' }]);
    assert.equal((await client.subscribe('/d')).successful, true);
    assert.equal((await limitCounts(port)).subscriptions, 1);
  });

  test('sessions per address: a Bayeux handshake and a REST subscription past it are refused; closing one frees a place', async (t) => {
    const { port, herald } = await startHerald(t, { maxSessionsPerAddress: 2 });
    const first = new RawBayeux(port);
    await first.handshake();
    const second = new RawBayeux(port);
    await second.handshake();
    const third = await new RawBayeux(port).handshake();
    assert.equal(third.successful, false);
    assert.equal(third.error, '403:too_many_sessions_from_this_address:handshake_denied');
    assert.equal(third.advice.reconnect, 'handshake');
    assert.ok(third.advice.interval >= 1000, 'and not at once');
    const rest = await httpRequest(port, { path: '/sub/x', headers: { Accept: 'text/event-stream' } });
    assert.equal(rest.status, 429);
    assert.match(rest.json().error, /too many subscriptions open from this address/);
    await first.send([{ channel: '/meta/disconnect', clientId: first.clientId, id: 'bye' }]);
    await waitFor('the session to go', () => herald.sessionCount === 1);
    assert.equal((await new RawBayeux(port).handshake()).successful, true);
    assert.equal((await limitCounts(port)).sessions_per_address, 2);
  });

  test('total connections: past maxConnections a new connection gets a 503 naming the limit', async (t) => {
    const { port } = await startHerald(t, { maxConnections: 2 });
    const sockets = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
    t.after(() => sockets.forEach((s) => s.destroy()));
    await Promise.all(sockets.map((s) => new Promise((resolve) => s.once('connect', resolve))));
    await waitFor('both counted', async () => {
      const probe = await httpRequest(port, { path: '/health' }).catch(() => undefined);
      return probe?.status === 503;
    });
    const refused = await httpRequest(port, { path: '/health' });
    assert.equal(refused.status, 503);
    assert.match(refused.json().error, /too many connections \(at most 2\)/);
    sockets.forEach((s) => s.destroy());
    await waitFor('room again', async () => (await httpRequest(port, { path: '/health' })).status === 200);
    assert.ok((await limitCounts(port)).connections >= 2);
  });

  test('slow consumer, policy disconnect: the session closes and its next connect is told why', async (t) => {
    const { port, herald } = await startHerald(t, { maxQueue: 5 });
    const client = new RawBayeux(port);
    await client.open();
    await client.subscribe('/q');
    for (let i = 0; i < 6; i++) await herald.publish('/q', i);
    await waitFor('the session to close', () => herald.sessionCount === 0);
    const [reply] = (await client.connect()).json();
    assert.equal(reply.error, '402::session_unknown');
    assert.equal(reply.advice.reconnect, 'handshake');
    assert.equal((await limitCounts(port)).queue_closed, 1);
  });

  test('slow consumer, policy drop-oldest: a resuming client keeps the newest messages and is told the channel has a gap', async (t) => {
    const { port, herald } = await startHerald(t, { maxQueue: 5, slowConsumer: 'drop-oldest' });
    const resuming = new RawBayeux(port);
    await resuming.handshake({ ext: { herald: { ids: true } } });
    await resuming.connect({ advice: { timeout: 0 } });
    await resuming.subscribe('/q');
    const plain = new RawBayeux(port);
    await plain.open();
    await plain.subscribe('/q');
    for (let i = 0; i < 8; i++) await herald.publish('/q', i);
    const messages = (await resuming.connect()).json();
    const reply = messages.find((m: any) => m.channel === '/meta/connect');
    assert.deepEqual(reply.ext.herald.gaps, ['/q']);
    assert.deepEqual(messages.filter((m: any) => m.channel === '/q').map((m: any) => m.data), [3, 4, 5, 6, 7]);
    await waitFor('the client that cannot be told a gap to be closed instead', () => herald.sessionCount === 1);
    const counts = await limitCounts(port);
    assert.equal(counts.queue_dropped, 3);
    assert.equal(counts.queue_closed, 1);
  });
});

describe('front door', () => {
  test('an origin outside the allowlist is refused on every door: Bayeux, REST, event streams, WebSocket upgrades, /sign', async (t) => {
    const { default: WebSocket } = await import('ws');
    const { port } = await startHerald(t, { allowedOrigins: ['https://app.example'] });
    const evil = { Origin: 'https://evil.example' };
    const doors = [
      httpRequest(port, { method: 'POST', path: '/bayeux', headers: { ...evil, 'Content-Type': 'application/json' }, body: '[]' }),
      httpRequest(port, { method: 'POST', path: '/pub/a', headers: evil, body: 'x' }),
      httpRequest(port, { path: '/sub/a', headers: { ...evil, Accept: 'text/event-stream' } }),
      httpRequest(port, { path: '/history/a', headers: evil }),
      httpRequest(port, { path: '/presence/a', headers: evil }),
      postJson(port, '/sign', { channel: '/a' }, evil),
    ];
    for (const res of await Promise.all(doors)) {
      assert.equal(res.status, 403);
      assert.match(res.json().error, /origin "https:\/\/evil.example" is not allowed/);
    }
    for (const path of ['/bayeux', '/sub/a']) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: evil });
      ws.on('error', () => {});
      const status = await new Promise<number>((resolve) => ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
      assert.equal(status, 403, path);
    }
    const allowed = await httpRequest(port, { path: '/history/a', headers: { Origin: 'https://app.example' } });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://app.example');
  });

  test('over TLS the browser cookie is Secure, HttpOnly and SameSite', async (t) => {
    const fixture = (name: string) => readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url));
    const server = createHttpsServer({ cert: fixture('tls-cert.pem'), key: fixture('tls-key.pem') });
    const herald = createHerald();
    herald.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      await herald.close();
      server.close();
    });
    const { port } = server.address() as AddressInfo;
    const { request } = await import('node:https');
    const setCookie = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/bayeux', method: 'POST', rejectUnauthorized: false, headers: { 'Content-Type': 'application/json' } }, (res) => {
        res.resume();
        resolve(String(res.headers['set-cookie']?.[0]));
      });
      req.on('error', reject);
      req.end(JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]));
    });
    assert.match(setCookie, /^BAYEUX_BROWSER=[0-9a-f]{40}; /);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Lax/);
    assert.match(setCookie, /; Secure$/);
  });

  test('client ids are 160 random bits and never reach other clients', async (t) => {
    const { port } = await startHerald(t);
    const publisher = new RawBayeux(port);
    await publisher.open();
    const listener = new RawBayeux(port);
    await listener.open();
    assert.match(publisher.clientId, /^[0-9a-f]{40}$/);
    assert.notEqual(publisher.clientId, listener.clientId);
    await listener.subscribe('/room');
    await publisher.subscribe('/room');
    await publisher.publish('/room', { text: 'hi' });
    const heard = await listener.connect();
    assert.match(heard.text, /"text":"hi"/);
    assert.doesNotMatch(heard.text, new RegExp(publisher.clientId));
    const presence = await httpRequest(port, { path: '/presence/room' });
    assert.equal(presence.json().connections, 2);
    assert.doesNotMatch(presence.text, new RegExp(`${publisher.clientId}|${listener.clientId}`));
  });

  test('limits are flags too, validated by name', async () => {
    const { resolveServeConfig } = await import('../../src/server/config.js');
    const config = resolveServeConfig(
      ['--max-message', '32kb', '--max-rate', '0', '--max-subscriptions', '10', '--max-sessions-per-ip', '5', '--max-connections', '100', '--slow-consumer', 'drop-oldest'],
      {},
    );
    assert.equal(config.herald.maxMessageBytes, 32 * 1024);
    assert.equal(config.herald.maxMessageRate, 0);
    assert.equal(config.herald.maxSubscriptions, 10);
    assert.equal(config.herald.maxSessionsPerAddress, 5);
    assert.equal(config.herald.maxConnections, 100);
    assert.equal(config.herald.slowConsumer, 'drop-oldest');
    assert.throws(() => resolveServeConfig(['--slow-consumer', 'ignore'], {}), /--slow-consumer \(HERALD_SLOW_CONSUMER\): expected disconnect or drop-oldest/);
    assert.throws(() => resolveServeConfig([], { HERALD_MAX_RATE: 'fast' }), /--max-rate \(HERALD_MAX_RATE\)/);
    assert.throws(() => createHerald({ maxConnections: -1 }), /maxConnections must be a number of connections from 0/);
    assert.equal(resolveServeConfig(['--memory-budget', '64mb'], {}).herald.memoryBudgetBytes, 64 * 1024 * 1024);
    assert.throws(() => resolveServeConfig([], { HERALD_MEMORY_BUDGET: '0' }), /--memory-budget \(HERALD_MEMORY_BUDGET\): expected a size such as .* from 1mb to 1024gb, got "0"/);
    assert.throws(() => createHerald({ memoryBudgetBytes: 0 }), /memoryBudgetBytes must be a whole number of bytes from 1048576/);
  });
});
