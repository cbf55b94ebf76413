/**
 * The deploy recipe's nginx.conf is real: it passes `nginx -t` as written (in a throwaway prefix,
 * writing nothing outside it), and it holds what Herald needs of a proxy: sticky upstream,
 * WebSocket upgrades, no buffering, timeouts above Herald's quiet periods, every public path
 * proxied and nothing else. recipes-serve.test.ts runs it in front of two nodes.
 * `scripts/test.sh` installs nginx when it is missing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { HERALD_DEFAULTS } from '../../src/server/create-herald.js';
import { nginxArgs, nginxBinary, nginxPrefix } from '../helpers/recipes-live.js';
import { deployFile, upstreamPorts } from '../helpers/recipes.js';

test('nginx.conf passes nginx -t, writing nothing outside its prefix', (t) => {
  const nginx = nginxBinary();
  const dir = nginxPrefix(t);
  const result = spawnSync(nginx, ['-t', ...nginxArgs(dir)], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(result.status, 0, `nginx -t failed:\n${result.stderr}`);
  assert.match(result.stderr, /syntax is ok/);
  assert.match(result.stderr, /test is successful/);
  // Tolerated: `user` when not root, and on nginx 1.25.1 or newer the `listen … http2` form,
  // which the recipe keeps because the `http2 on;` that replaces it is unknown to Debian 12's 1.22.
  const tolerated = [/"user" directive makes sense only if the master process runs with super-user/, /the "listen \.\.\. http2" directive is deprecated/];
  const warnings = result.stderr.split('\n').filter((line) => /\[(warn|emerg|alert|crit|error)\]/.test(line) && !tolerated.some((pattern) => pattern.test(line)));
  assert.deepEqual(warnings, [], 'no warnings');
});

test('nginx.conf holds what Herald needs of a proxy', () => {
  const conf = deployFile('nginx.conf');
  const directives = conf.split('\n').filter((line) => !line.trim().startsWith('#')).join('\n');
  for (const needed of [
    /hash \$remote_addr consistent;/,
    /map \$http_upgrade \$connection_upgrade/,
    /proxy_set_header Upgrade \$http_upgrade;/,
    /proxy_set_header Connection \$connection_upgrade;/,
    /proxy_http_version 1\.1;/,
    /proxy_buffering off;/,
    /proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;/,
    /proxy_set_header X-Forwarded-Proto \$scheme;/,
    /proxy_cookie_flags BAYEUX_BROWSER secure;/,
    /Strict-Transport-Security/,
    /return 301 https:\/\/\$host\$request_uri;/,
  ]) {
    assert.match(directives, needed);
  }
  // Quiet periods: a held connect (--timeout), SSE heartbeats, WebSocket pings. nginx must outwait them all.
  const quiet = Math.max(HERALD_DEFAULTS.timeoutMs, HERALD_DEFAULTS.heartbeatMs, HERALD_DEFAULTS.pingIntervalMs);
  for (const timeout of ['proxy_read_timeout', 'proxy_send_timeout']) {
    const value = new RegExp(`${timeout} (\\d+)s;`).exec(directives);
    assert.ok(value !== null, `${timeout} is set in seconds`);
    assert.ok(Number(value[1]) * 1000 >= quiet * 2, `${timeout} ${value[1]}s is comfortably above ${quiet} ms`);
  }
  // Each of Herald's public paths has a location that proxies it; nothing else is proxied.
  const locations = [...directives.matchAll(/location (=\s*)?(\S+) \{([^}]*)\}/g)].map((m) => ({ path: m[2]!, body: m[3]! }));
  const proxied = locations.filter((l) => /proxy_pass http:\/\/herald;/.test(l.body)).map((l) => l.path);
  for (const path of ['/bayeux', '/cometd', '/sub/', '/pub/', '/history/', '/presence/', '/sign', '/health', '/herald.js']) {
    assert.ok(proxied.includes(path), `location ${path} proxies to Herald`);
  }
  assert.ok(!/proxy_set_header/.test(locations.map((l) => l.body).join('')), 'no location drops the inherited proxy headers by setting its own');
  assert.equal(upstreamPorts().length >= 2, true, 'two nodes or more upstream');
});
