/**
 * The deploy recipe's systemd side is real: herald.env.example names only `herald serve`
 * settings and, filled in, is a valid configuration (as it is, Herald refuses it with exit 2,
 * which the units do not restart); herald.service and herald@.service run package.json's bin with
 * real flags, give the drain time to finish before systemd kills, and are hardened (checked by
 * `systemd-analyze` when it is installed).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, posix } from 'node:path';
import { test } from 'node:test';
import { resolveServeConfig } from '../../src/server/config.js';
import { onCleanup } from '../helpers/cleanup.js';
import { exited } from '../helpers/recipes-live.js';
import { deployFile, ENV_NAMES, execStart, filledEnv, packageBin, parseEnvFile, parseUnit, ROOT, serveArgs, shutdownGraceMs, timeSpanMs, unitEnvironment, unitValue } from '../helpers/recipes.js';

test('herald.env.example names real settings, and a copy not filled in does not start', (t) => {
  const env = parseEnvFile(deployFile('herald.env.example'));
  for (const name of [...Object.keys(env.active), ...Object.keys(env.commented)]) {
    assert.ok(ENV_NAMES.has(name), `${name} is a herald serve setting (SERVE_SETTINGS)`);
  }
  for (const name of ['HERALD_PUBLISH_KEY', 'HERALD_ENGINE']) assert.ok(name in env.active, `${name} is set`);
  assert.ok('HERALD_JWT_SECRET' in env.active || 'HERALD_JWT_SECRET' in env.commented, 'HERALD_JWT_SECRET is shown');
  // As it is, the placeholders are refused, naming the setting.
  assert.throws(() => resolveServeConfig([], env.active), /HERALD_PUBLISH_KEY/);
  // Filled in, with every commented setting turned on too, it is a valid configuration. The
  // config file HERALD_CONFIG names is the operator's to write: an empty one of that name stands in.
  const commented = { ...env.commented };
  if (commented.HERALD_CONFIG !== undefined) {
    assert.match(commented.HERALD_CONFIG, /^\/etc\/herald\/[\w.-]+\.(?:json|ya?ml)$/, 'HERALD_CONFIG names a JSON or YAML file in /etc/herald');
    const dir = mkdtempSync(join(tmpdir(), 'herald-config-'));
    onCleanup(t, () => rmSync(dir, { recursive: true, force: true }));
    commented.HERALD_CONFIG = join(dir, basename(commented.HERALD_CONFIG));
    writeFileSync(commented.HERALD_CONFIG, '{}\n');
  }
  const config = resolveServeConfig([], filledEnv({ ...env.active, ...commented }));
  assert.ok(config.herald.publishKey !== undefined && config.herald.jwtSecret !== undefined);
  assert.match(String(config.herald.engine), /^redis:\/\//);
});

for (const file of ['herald.service', 'herald@.service'] as const) {
  test(`${file}: real flags, a stop timeout above the drain, hardening`, async () => {
    const unit = parseUnit(deployFile(file), file);
    const service = (key: string) => unitValue(unit, 'Service', key);
    const argv = execStart(unit, '8081');
    assert.deepEqual(argv.slice(0, 2), ['/usr/bin/env', 'node'], 'node found on the PATH systemd gives');
    const workingDirectory = service('WorkingDirectory');
    assert.ok(workingDirectory !== undefined, 'WorkingDirectory is set');
    assert.equal(argv[2], posix.join(workingDirectory, packageBin()), "the script is package.json's bin, in WorkingDirectory");

    assert.equal(service('EnvironmentFile'), '/etc/herald/herald.env');
    const env = { ...unitEnvironment(unit), ...filledEnv(parseEnvFile(deployFile('herald.env.example')).active) };
    const config = resolveServeConfig(serveArgs(argv, file), env);
    assert.equal(config.host, '127.0.0.1', 'behind the proxy only');
    assert.equal(config.port, file === 'herald.service' ? 8080 : 8081);
    assert.equal(config.herald.demo, false);
    assert.deepEqual(config.herald.trustedProxies, ['127.0.0.1', '::1'], 'the client address is read from nginx’s X-Forwarded-For');

    assert.equal(service('KillSignal'), 'SIGTERM');
    const stopMs = timeSpanMs(service('TimeoutStopSec') ?? '90s');
    const graceMs = shutdownGraceMs(config);
    assert.ok(stopMs >= graceMs + 10_000, `TimeoutStopSec (${stopMs} ms) leaves the drain (at most ${graceMs} ms) room to finish`);
    assert.equal(service('Restart'), 'on-failure');
    assert.equal(service('RestartPreventExitStatus'), '2', 'a bad setting (exit 2) is not restarted in a loop');
    assert.equal(service('LimitNOFILE'), '1048576');
    for (const [key, value] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['PrivateTmp', 'yes'], ['DynamicUser', 'yes'], ['ProtectHome', 'yes']] as const) {
      assert.equal(service(key), value, `${key}=${value}`);
    }
    assert.notEqual(service('MemoryDenyWriteExecute'), 'yes', 'V8 needs writable executable memory');
    assert.equal(unitValue(unit, 'Install', 'WantedBy'), 'multi-user.target');
  });
}

test('herald.service and herald@.service differ only in the port', () => {
  const services = ['herald.service', 'herald@.service'].map((file) => {
    const service = parseUnit(deployFile(file), file).get('Service')!;
    return [...service].map(([key, values]) => `${key}=${values.join('\n')}`.replace('--port %i', '--port 8080'));
  });
  assert.deepEqual(services[1], services[0]);
});

test('systemd-analyze verifies the units and rates their exposure OK', async (t) => {
  const which = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (which.error !== undefined) {
    t.skip('systemd-analyze is not installed: the parse checks above stand alone');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'herald-units-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'herald.service'), deployFile('herald.service'));
  writeFileSync(join(dir, 'herald@8081.service'), deployFile('herald@.service'));
  for (const unit of ['herald.service', 'herald@8081.service']) {
    const verify = spawnSync('systemd-analyze', ['verify', join(dir, unit)], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(verify.status, 0, `systemd-analyze verify ${unit}:\n${verify.stderr}`);
    assert.equal(`${verify.stdout}${verify.stderr}`.trim(), '', `systemd-analyze verify ${unit} has nothing to say`);
    const security = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', join(dir, unit)], { encoding: 'utf8', timeout: 20_000 });
    const level = /Overall exposure level for \S+: (\d+(?:\.\d+)?) (\w+)/.exec(security.stdout);
    if (level === null) {
      t.diagnostic(`systemd-analyze security --offline gave no rating: ${security.stderr.trim()}`);
      continue;
    }
    assert.ok(Number(level[1]) <= 2, `exposure of ${unit} is ${level[1]} ${level[2]} (at most 2)`);
  }
});

test('herald serve refuses a herald.env.example not filled in with exit 2 (which systemd does not restart)', async () => {
  const child = spawn(process.execPath, [join(ROOT, packageBin()), 'serve', '--port', '0', '--demo', 'off'], {
    env: { PATH: process.env.PATH, ...parseEnvFile(deployFile('herald.env.example')).active, HERALD_ENGINE: 'memory' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const { code } = await exited(child, 'herald serve');
  assert.equal(code, 2);
  assert.match(stderr, /HERALD_PUBLISH_KEY/);
  assert.equal(unitValue(parseUnit(deployFile('herald.service'), 'herald.service'), 'Service', 'RestartPreventExitStatus'), String(code));
});
