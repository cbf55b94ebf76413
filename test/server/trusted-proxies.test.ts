/**
 * Behind a proxy, per-address limits, logs and presence see the clients, not the proxy: the
 * forwarding headers of trusted proxies (and only theirs) are believed, right-most hop first. And
 * the default connection cap follows the process's open-files limit.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { describe, test } from 'node:test';
import { addressGroup } from '../../src/core/address-group.js';
import { clientAddressResolver, parseAddressRange } from '../../src/server/client-address.js';
import { connectionCap, FALLBACK_CONNECTIONS } from '../../src/server/connection-cap.js';
import { HERALD_DEFAULTS } from '../../src/server/create-herald.js';
import { onCleanup } from '../helpers/cleanup.js';
import { startHerald } from '../helpers/herald.js';
import { SERVER_NAME } from '../helpers/recipes.js';
import { childPids, exited, nginxArgs, nginxBinary, nginxPrefix, running, tlsOptions } from '../helpers/recipes-live.js';
import { freePort } from '../helpers/redis.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

type Hookable = { after(fn: () => unknown): void };

describe('the client address', () => {
  test('trusted proxies: the right-most hop that is not one of them; anyone else is their own address', () => {
    const of = clientAddressResolver({ trustedProxies: ['127.0.0.1', '10.0.0.0/8', 'fd00::/8'] });
    const xff = (value: string) => ({ 'x-forwarded-for': value });
    assert.equal(of('127.0.0.1', xff('203.0.113.7')), '203.0.113.7');
    assert.equal(of('::ffff:127.0.0.1', xff('203.0.113.7')), '203.0.113.7', 'an IPv4 peer on a dual-stack socket');
    assert.equal(of('127.0.0.1', xff('198.51.100.1, 203.0.113.7, 10.1.2.3')), '203.0.113.7', 'past a chain of trusted proxies');
    assert.equal(of('127.0.0.1', xff('6.6.6.6, 203.0.113.7')), '203.0.113.7', 'what the client wrote on the left is not believed');
    assert.equal(of('fd12::5', xff('2001:db8::1')), '2001:db8::1', 'IPv6 proxies and clients');
    assert.equal(of('127.0.0.1', { forwarded: 'for=192.0.2.60;proto=http, for="[2001:db8::7]:4711"' }), '2001:db8::7', 'Forwarded, without X-Forwarded-For');
    assert.equal(of('127.0.0.1', xff('203.0.113.7:5123')), '203.0.113.7', 'a hop with a port');
    assert.equal(of('127.0.0.1', xff('10.0.0.1, 10.0.0.2')), '10.0.0.1', 'all trusted: the farthest');
    assert.equal(of('127.0.0.1', xff('203.0.113.7, unknown')), '127.0.0.1', 'a hop that is no address ends the walk');
    assert.equal(of('127.0.0.1', {}), '127.0.0.1');
    // Spoofing: a peer that is not a trusted proxy is its own address, whatever it claims.
    assert.equal(of('198.51.100.9', xff('203.0.113.7')), '198.51.100.9');
    assert.equal(of('11.0.0.1', xff('203.0.113.7')), '11.0.0.1', 'outside 10.0.0.0/8');
    assert.equal(clientAddressResolver({ trustedProxies: [] })('127.0.0.1', xff('203.0.113.7')), '127.0.0.1', 'no proxies trusted by default');
    for (const bad of ['10.0.0.0/33', '::/129', 'localhost', '10.0.0', '', '1.2.3.4/']) assert.equal(parseAddressRange(bad), undefined, bad);
    for (const good of ['0.0.0.0/0', '::/0', '::1', '[::1]', '192.168.0.0/16', '2001:db8::/32', '::ffff:10.0.0.1']) assert.ok(parseAddressRange(good), good);
  });

  test('the default connection cap is the open-files limit less headroom, said at start', () => {
    const limits = (soft: string) => `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                1048576              files\n`;
    assert.deepEqual(connectionCap(limits('20000')), { connections: 19_000, openFiles: 20_000, reserved: 1000 });
    assert.deepEqual(connectionCap(limits('1024')), { connections: 960, openFiles: 1024, reserved: 64 });
    assert.deepEqual(connectionCap(limits('unlimited')), { connections: FALLBACK_CONNECTIONS, openFiles: undefined, reserved: 0 });
    assert.deepEqual(connectionCap(''), { connections: FALLBACK_CONNECTIONS, openFiles: undefined, reserved: 0 });
    assert.equal(HERALD_DEFAULTS.maxConnections, connectionCap().connections, "this process's own limit");
  });
});

/** An event stream held open from `localAddress`: resolves with its status once the headers arrive. */
async function holdStream(t: Hookable, port: number, path: string, options: { localAddress?: string; headers?: Record<string, string>; tls?: boolean }): Promise<number> {
  const base = { host: '127.0.0.1', port, path, localAddress: options.localAddress, agent: false as const, headers: { Accept: 'text/event-stream', ...options.headers } };
  const req = options.tls === true ? httpsRequest({ ...base, ...tlsOptions(), headers: { Host: SERVER_NAME, ...base.headers } }) : request(base);
  req.on('error', () => {});
  req.end();
  onCleanup(t, () => req.destroy());
  const [res] = (await withTimeout(`the answer to ${path}`, once(req, 'response'))) as [IncomingMessage];
  res.resume();
  return res.statusCode ?? 0;
}

describe('one client per IPv6 /64', () => {
  test('an address is grouped: IPv4 as itself, IPv4-mapped as IPv4, IPv6 by its /64 in any spelling', () => {
    assert.equal(addressGroup('203.0.113.7'), '203.0.113.7');
    assert.equal(addressGroup('::ffff:203.0.113.7'), '203.0.113.7');
    assert.equal(addressGroup('2001:db8:1:2::a'), '2001:db8:1:2::/64');
    assert.equal(addressGroup('2001:0DB8:0001:0002:ffff:1:2:3'), '2001:db8:1:2::/64', 'leading zeros and case');
    assert.equal(addressGroup('2001:db8::1'), '2001:db8:0:0::/64', 'the :: inside the prefix');
    assert.equal(addressGroup('[::1]'), '0:0:0:0::/64');
    assert.equal(addressGroup('fe80::1%eth0'), 'fe80:0:0:0::/64', 'a zone');
    assert.equal(addressGroup('::1.2.3.4'), '0:0:0:0::/64');
    assert.equal(addressGroup('not an address'), 'not an address');
    assert.equal(addressGroup(undefined), undefined);
  });

  test('rotating addresses inside one /64 gains no sessions; another /64 is another client', async (t) => {
    const { port, herald } = await startHerald(t, { maxSessionsPerAddress: 1, trustedProxies: ['127.0.0.1'] });
    const from = (address: string) => holdStream(t, port, '/sub/room', { headers: { 'X-Forwarded-For': address } });
    assert.equal(await from('2001:db8:1:2::a'), 200);
    await waitFor('the session', () => herald.sessionCount === 1);
    assert.equal(await from('2001:db8:1:2:abcd::b'), 429, 'the same /64, another address');
    assert.equal(await from('2001:db8:1:3::a'), 200, 'the next /64');
    assert.equal(await from('::ffff:203.0.113.7'), 200);
    assert.equal(await from('203.0.113.7'), 429, 'an IPv4 client however it is written');
  });
});

describe('behind nginx', () => {
  test('the per-address session limit counts the clients behind the documented nginx.conf, and a forged X-Forwarded-For gains nothing', async (t) => {
    const { port, herald } = await startHerald(t, { maxSessionsPerAddress: 1, trustedProxies: ['127.0.0.1'] });
    const [http, https] = await Promise.all([freePort(), freePort()]);
    const dir = nginxPrefix(t, { http, https, upstream: [port, port] });
    const nginx = spawn(nginxBinary(), nginxArgs(dir, 'daemon off;'), { stdio: ['ignore', 'ignore', 'pipe'] });
    let nginxLog = '';
    nginx.stderr!.setEncoding('utf8').on('data', (chunk: string) => (nginxLog += chunk));
    onCleanup(t, async () => {
      if (!running(nginx)) return;
      const workers = childPids(nginx.pid!);
      nginx.kill('SIGTERM');
      await exited(nginx, 'nginx', 5000).catch(() => {
        for (const pid of [nginx.pid!, ...workers]) process.kill(pid, 'SIGKILL');
      });
    });
    await waitFor('nginx to answer', async () => {
      if (!running(nginx)) assert.fail(`nginx exited: ${nginxLog}`);
      return (await holdStream(t, https, '/health', { tls: true }).catch(() => 0)) === 200;
    });

    // Two clients on two addresses: one session each, though both reach Herald through nginx.
    assert.equal(await holdStream(t, https, '/sub/room', { tls: true, localAddress: '127.0.0.2' }), 200);
    assert.equal(await holdStream(t, https, '/sub/room', { tls: true, localAddress: '127.0.0.3' }), 200, 'another client behind the same proxy');
    await waitFor('both sessions', () => herald.sessionCount === 2);
    assert.equal(await holdStream(t, https, '/sub/room', { tls: true, localAddress: '127.0.0.2' }), 429, 'the first client, again: its own limit');
    // A client that writes someone else's address in X-Forwarded-For: nginx appends the address it saw.
    assert.equal(await holdStream(t, https, '/sub/room', { tls: true, localAddress: '127.0.0.2', headers: { 'X-Forwarded-For': '203.0.113.99' } }), 429, 'forged hop ignored');

    // Straight to Herald from a peer that is no trusted proxy: its X-Forwarded-For is not believed.
    assert.equal(await holdStream(t, port, '/sub/room', { localAddress: '127.0.0.3', headers: { 'X-Forwarded-For': '203.0.113.50' } }), 429);
    assert.equal(await holdStream(t, port, '/sub/room', { localAddress: '127.0.0.4', headers: { 'X-Forwarded-For': '127.0.0.2' } }), 200, 'nor can it borrow another client’s count');
  });
});
