/**
 * The deploy recipes serve: docs/deploy/nginx.conf, as written (in a throwaway prefix, on
 * loopback ports), in front of two `herald serve` nodes started from herald@.service with
 * herald.env.example on a real Redis: health, the redirect and the dropped Host, HTTP/2, Bayeux
 * long-polling (the Secure cookie, the sticky upstream) and WebSocket, SSE and a REST WebSocket
 * fed by every node, the Dockerfile's HEALTHCHECK, and the drain on SIGTERM well inside
 * TimeoutStopSec. `scripts/test.sh` installs nginx when it is missing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import { join } from 'node:path';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { onCleanup } from '../helpers/cleanup.js';
import { call, childPids, exited, json, nginxArgs, nginxBinary, nginxPrefix, openStream, running, tlsOptions } from '../helpers/recipes-live.js';
import { deployFile, execForm, execStart, filledEnv, parseDockerfile, parseEnvFile, parseUnit, ROOT, SERVER_NAME, timeSpanMs, unitEnvironment, unitValue, upstreamPorts } from '../helpers/recipes.js';
import { freePort, startRedis } from '../helpers/redis.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

test('the recipes serve: nginx.conf in front of two herald@.service nodes on Redis', async (t) => {
  const nginx = nginxBinary();
  const redis = await startRedis(t);
  const upstream = upstreamPorts();
  const [http, https, ...nodePorts] = await Promise.all([freePort(), freePort(), ...upstream.map(() => freePort())]);

  // ---- the nodes, as systemd would start them: ExecStart, Environment= and the filled-in herald.env
  const unit = parseUnit(deployFile('herald@.service'), 'herald@.service');
  const example = parseEnvFile(deployFile('herald.env.example'));
  const env: Record<string, string> = { ...unitEnvironment(unit), ...filledEnv(example.active), HERALD_ENGINE: redis.url };
  const publishKey = env.HERALD_PUBLISH_KEY!;
  const workingDirectory = unitValue(unit, 'Service', 'WorkingDirectory')!;
  const nodes = nodePorts.map((port) => {
    const [command, ...args] = execStart(unit, String(port)).map((word) => (word.startsWith(`${workingDirectory}/`) ? join(ROOT, word.slice(workingDirectory.length + 1)) : word));
    const child = spawn(command!, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
    onCleanup(t, async () => {
      if (!running(child)) return;
      child.kill('SIGKILL');
      await exited(child, `node ${port}`);
    });
    return { port, child, log: () => log };
  });
  for (const node of nodes) {
    await waitFor(`the node on ${node.port} is ready (its Redis connected)`, async () => {
      if (!running(node.child)) assert.fail(`the node on ${node.port} exited: ${node.log()}`);
      const ready = await call(0, { path: '/ready', plainPort: node.port }).catch(() => undefined);
      return ready?.status === 200;
    }, 15_000);
  }

  // ---- nginx with the recipe's configuration
  const dir = nginxPrefix(t, { http, https, upstream: nodePorts });
  const server = spawn(nginx, nginxArgs(dir, 'daemon off;'), { stdio: ['ignore', 'ignore', 'pipe'] });
  let nginxLog = '';
  server.stderr!.setEncoding('utf8').on('data', (chunk: string) => (nginxLog += chunk));
  onCleanup(t, async () => {
    if (!running(server)) return;
    const workers = childPids(server.pid!);
    server.kill('SIGTERM'); // fast shutdown: the master stops its workers
    try {
      await exited(server, 'nginx', 5000);
    } catch {
      server.kill('SIGKILL');
      for (const pid of workers) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
  });
  const errorLog = () => {
    const file = join(dir, 'logs', 'error.log');
    return `${nginxLog}${existsSync(file) ? readFileSync(file, 'utf8') : ''}`;
  };
  await waitFor('nginx answers', async () => {
    if (!running(server)) assert.fail(`nginx exited:\n${errorLog()}`);
    return (await call(https, { path: '/health' }).catch(() => undefined))?.status === 200;
  });

  // ---- health, the client script, and nothing else of Herald's
  const health = await call(https, { path: '/health' });
  assert.equal(health.status, 200);
  assert.equal(json(health).status, 'ok');
  assert.equal((await call(https, { path: '/ready' })).status, 200);
  assert.equal(health.headers['strict-transport-security'], 'max-age=63072000', 'HSTS');
  assert.equal((await call(https, { path: '/herald.js' })).status, 200);
  assert.equal((await call(https, { path: '/metrics' })).status, 404, 'only the listed paths are proxied');

  // ---- port 80 redirects; a name that is not the server's gets no answer at all
  const redirect = await call(https, { path: '/bayeux?x=1', plainPort: http });
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers.location, `https://${SERVER_NAME}/bayeux?x=1`);
  await assert.rejects(call(https, { path: '/health', plainPort: http, headers: { Host: 'localhost' } }), /socket hang up|ECONNRESET/, 'Host: localhost is dropped (444)');

  // ---- HTTP/2 to nginx, HTTP/1.1 to the node
  const h2 = http2Connect(`https://127.0.0.1:${https}`, tlsOptions());
  h2.on('error', () => {});
  onCleanup(t, () => h2.close());
  const h2Status = await withTimeout('an HTTP/2 answer', new Promise<number>((resolve, reject) => {
    const stream = h2.request({ ':path': '/health', ':authority': SERVER_NAME });
    stream.on('response', (headers) => resolve(Number(headers[':status'])));
    stream.on('error', reject);
    stream.resume();
  }));
  assert.equal(h2Status, 200);

  // ---- Bayeux long-polling through nginx: the handshake's cookie comes back Secure, the
  // connects stick to the node that knows the session, a held connect delivers at once
  const origin = 'https://herald.example.com';
  let cookie = '';
  const bayeux = async (messages: unknown[], headers: Record<string, string> = {}) => {
    const reply = await call(https, { method: 'POST', path: '/bayeux', body: JSON.stringify(messages), headers: { 'Content-Type': 'application/json', Origin: origin, ...(cookie === '' ? {} : { Cookie: cookie }), ...headers } });
    assert.equal(reply.status, 200, reply.text);
    return { reply, messages: json(reply) as any[] };
  };
  const refused = await call(https, { method: 'POST', path: '/bayeux', body: '[]', headers: { 'Content-Type': 'application/json', Origin: 'https://elsewhere.example' } });
  assert.equal(refused.status, 403, 'an origin that is not allowed is refused: Herald checks Origin against the Host nginx passes');
  const handshake = await bayeux([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]);
  assert.equal(handshake.messages[0].successful, true, handshake.reply.text);
  const clientId: string = handshake.messages[0].clientId;
  const setCookie = handshake.reply.headers['set-cookie']?.[0] ?? '';
  assert.match(setCookie, /^BAYEUX_BROWSER=/);
  assert.match(setCookie, /;\s*secure/i, 'nginx marks the cookie Secure (proxy_cookie_flags)');
  cookie = setCookie.split(';')[0]!;
  const connect = (advice?: unknown) => bayeux([{ channel: '/meta/connect', clientId, connectionType: 'long-polling', ...(advice === undefined ? {} : { advice }) }]);
  const firstConnect = await connect({ timeout: 0 });
  assert.equal(firstConnect.messages[0].successful, true, `the connect reached the node that holds the session (sticky upstream): ${firstConnect.reply.text}`);
  const subscribed = await bayeux([{ channel: '/meta/subscribe', clientId, subscription: '/deploy/lp' }]);
  assert.equal(subscribed.messages[0].successful, true, subscribed.reply.text);
  const held = connect();
  const unauthorised = await call(https, { method: 'POST', path: '/pub/deploy/lp', body: '{"n":0}', headers: { 'Content-Type': 'application/json' } });
  assert.equal(unauthorised.status, 401, 'behind the proxy, publishing needs the key');
  const publish = (channel: string, data: unknown, port?: number) =>
    call(https, { method: 'POST', path: `/pub${channel}`, body: JSON.stringify(data), plainPort: port, headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${publishKey}` } });
  const published = await publish('/deploy/lp', { n: 1 });
  assert.equal(published.status, 200, published.text);
  const delivered = await withTimeout('the held connect to deliver', held);
  assert.deepEqual(delivered.messages.filter((m) => m.channel === '/deploy/lp').map((m) => m.data), [{ n: 1 }]);
  assert.equal(delivered.messages.find((m) => m.channel === '/meta/connect')?.successful, true, 'the connect reached the node that holds the session');

  // ---- Bayeux over WebSocket through nginx
  const socket = new WebSocket(`wss://127.0.0.1:${https}/bayeux`, { ...tlsOptions(), headers: { Host: SERVER_NAME, Origin: origin } });
  const frames: any[] = [];
  socket.on('message', (data) => frames.push(...(JSON.parse(String(data)) as unknown[])));
  socket.on('error', () => {});
  const closed = once(socket, 'close') as Promise<[number, Buffer]>;
  onCleanup(t, () => socket.terminate());
  await withTimeout('the WebSocket upgrade', once(socket, 'open'));
  socket.send(JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'] }]));
  const wsClientId = (await waitFor('the WebSocket handshake', () => frames.find((m) => m.channel === '/meta/handshake'))).clientId as string;
  socket.send(JSON.stringify([{ channel: '/meta/subscribe', clientId: wsClientId, subscription: '/deploy/ws' }]));
  await waitFor('the WebSocket subscription', () => frames.find((m) => m.channel === '/meta/subscribe')?.successful);
  socket.send(JSON.stringify([{ channel: '/meta/connect', clientId: wsClientId, connectionType: 'websocket' }]));
  assert.equal((await publish('/deploy/ws', { n: 2 })).status, 200);
  await waitFor('a delivery over the WebSocket', () => frames.some((m) => m.channel === '/deploy/ws' && m.data?.n === 2));

  // ---- SSE on /sub/ through nginx: a publish through nginx, and one straight into each node,
  // arrive (the nodes share Redis); a REST WebSocket on /sub/ too. Both resume after a first
  // message, so nothing published once they are open can be missed.
  const first = json(await publish('/deploy/sse', 'start'));
  const sse = await openStream(t, https, '/sub/deploy/sse', { Accept: 'text/event-stream', 'Last-Event-ID': first.id });
  assert.equal(sse.res.statusCode, 200);
  assert.match(String(sse.res.headers['content-type']), /text\/event-stream/);
  const restSocket = new WebSocket(`wss://127.0.0.1:${https}/sub/deploy/sse?since=${encodeURIComponent(first.id)}`, { ...tlsOptions(), headers: { Host: SERVER_NAME } });
  const restFrames: string[] = [];
  restSocket.on('message', (data) => restFrames.push(String(data)));
  restSocket.on('error', () => {});
  onCleanup(t, () => restSocket.terminate());
  await withTimeout('the /sub/ WebSocket upgrade', once(restSocket, 'open'));
  assert.equal((await publish('/deploy/sse', { via: 'nginx' })).status, 200);
  for (const node of nodes) assert.equal((await publish('/deploy/sse', { via: node.port }, node.port)).status, 200);
  for (const via of ['nginx', ...nodes.map((n) => n.port)]) {
    const data = JSON.stringify({ via });
    await waitFor(`the event published via ${via}`, () => sse.text().includes(data) && restFrames.some((f) => f.includes(data)));
  }
  assert.ok(!sse.text().includes('"start"') && !restFrames.some((f) => f.includes('"start"')), 'resumed after the first message, not from it');
  assert.match(sse.text(), /^id: /m, 'events carry ids');

  // ---- the Dockerfile's HEALTHCHECK, run for real against a node and against nothing
  const docker = parseDockerfile(deployFile('Dockerfile'));
  const check = docker.filter((i) => i.op === 'HEALTHCHECK').at(-1)!.args;
  const [probe, ...probeArgs] = execForm(check.slice(check.indexOf('CMD') + 3).trim(), 'HEALTHCHECK CMD');
  const runProbe = async (port: number) => {
    const child = spawn(probe === 'node' ? process.execPath : probe!, probeArgs, { env: { PATH: process.env.PATH, HERALD_PORT: String(port) }, stdio: 'ignore' });
    return (await exited(child, 'the health check')).code;
  };
  assert.equal(await runProbe(nodes[0]!.port), 0, 'healthy node: exit 0');
  assert.equal(await runProbe(await freePort()), 1, 'no node: exit 1');

  // ---- stop, as systemd does: SIGTERM; each node drains and exits 0 well inside TimeoutStopSec
  const stopMs = timeSpanMs(unitValue(unit, 'Service', 'TimeoutStopSec')!);
  const started = performance.now();
  for (const node of nodes) node.child.kill('SIGTERM');
  for (const node of nodes) {
    const { code } = await exited(node.child, `node ${node.port} to drain`, stopMs);
    assert.equal(code, 0, `node ${node.port} exits 0 after draining:\n${node.log()}`);
  }
  const drainMs = performance.now() - started;
  t.diagnostic(`the nodes drained in ${Math.round(drainMs)} ms (TimeoutStopSec: ${stopMs} ms)`);
  assert.ok(drainMs < stopMs / 2, `drained in ${Math.round(drainMs)} ms, well inside TimeoutStopSec (${stopMs} ms)`);
  const [code] = await withTimeout('the WebSocket to close', closed);
  assert.equal(code, 1001, 'the WebSocket closes with 1001 (going away), through nginx');
  // (Not root, nginx cannot raise its descriptor limit: worker_rlimit_nofile's alert is expected then.)
  const serious = errorLog().split('\n').filter((line) => /\[(emerg|alert|crit)\]/.test(line) && !/setrlimit\(RLIMIT_NOFILE/.test(line));
  assert.deepEqual(serious, [], 'nginx logged no serious error');
});
