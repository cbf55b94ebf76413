/** `herald config --print` as a user runs it: the same flags, variables and file as `herald serve`, secrets masked. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { SERVE_SETTINGS } from '../../src/server/config.js';
import { withTimeout } from '../helpers/wait.js';

const MAIN = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));

/** No HERALD_ variable of the machine running the tests leaks in. */
const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HERALD_')));

async function herald(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...CLEAN_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = await withTimeout(`herald ${args.join(' ')}`, once(child, 'exit'), 10_000);
  return { code: code as number | null, stdout, stderr };
}

describe('herald config --print', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-config-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const SECRETS = { publish: 'publish-key-0123456789', admin: 'admin-key-0123456789', jwt: 'jwt-secret-0123456789-0123456789-abc', password: 's3cretpassw0rd' };
  const yaml = join(dir, 'herald.yaml');
  writeFileSync(
    yaml,
    [
      'port: 9001',
      'max-rate: 50',
      'maxSubscriptions: 64',
      'timeout: 20000',
      'demo: off',
      'allowed-origins: [https://a.example, localhost]',
      `publish-key: ${SECRETS.publish}`,
      `admin-key: ${SECRETS.admin}`,
      `engine: redis://herald:${SECRETS.password}@cache:6379/2`,
      'permissions:',
      '  clientPublish: false',
      '  channels: [{ pattern: /chat/**, subscribe: anyone }]',
      '',
    ].join('\n'),
  );

  test('shows every setting with its value and its source: flag > env > file > default', async () => {
    const { code, stdout, stderr } = await herald(['config', '--print', '--config', yaml, '--max-rate', '9', '--host', '0.0.0.0'], {
      HERALD_MAX_RATE: '7',
      HERALD_MAX_SUBSCRIPTIONS: '32',
      HERALD_JWT_SECRET: SECRETS.jwt,
    });
    assert.equal(code, 0, stderr);
    assert.equal(stderr, '');
    const shown = JSON.parse(stdout);
    assert.deepEqual(Object.keys(shown), Object.keys(SERVE_SETTINGS));
    assert.deepEqual(shown.config, { value: yaml, source: 'flag' });
    assert.deepEqual(shown['max-rate'], { value: 9, source: 'flag' });
    assert.deepEqual(shown.host, { value: '0.0.0.0', source: 'flag' });
    assert.deepEqual(shown['max-subscriptions'], { value: 32, source: 'env' });
    assert.deepEqual(shown.port, { value: 9001, source: 'file' });
    assert.deepEqual(shown.timeout, { value: '20s', source: 'file' });
    assert.deepEqual(shown.demo, { value: false, source: 'file' });
    assert.deepEqual(shown['allowed-origins'], { value: ['https://a.example', 'localhost'], source: 'file' });
    assert.deepEqual(shown.permissions, { value: { clientPublish: false, channels: [{ pattern: '/chat/**', subscribe: 'anyone' }] }, source: 'file' });
    assert.deepEqual(shown['max-interval'], { value: '10s', source: 'default' });
    assert.deepEqual(shown['log-level'], { value: 'info', source: 'default' });
    assert.deepEqual(shown['jwt-issuer'], { value: null, source: 'default' });
    // Secrets masked, wherever they came from.
    assert.deepEqual(shown['publish-key'], { value: '***', source: 'file' });
    assert.deepEqual(shown['admin-key'], { value: '***', source: 'file' });
    assert.deepEqual(shown['jwt-secret'], { value: '***', source: 'env' });
    assert.deepEqual(shown.engine, { value: 'redis://herald:***@cache:6379/2', source: 'file' });
    for (const secret of Object.values(SECRETS)) assert.ok(!stdout.includes(secret), `${secret} is not printed`);
  });

  test('--format yaml, the file named by HERALD_CONFIG', async () => {
    const { code, stdout, stderr } = await herald(['config', '--print', '--format', 'yaml'], { HERALD_CONFIG: yaml, HERALD_PUBLISH_KEY: SECRETS.publish });
    assert.equal(code, 0, stderr);
    const shown = parseYaml(stdout);
    assert.deepEqual(shown.config, { value: yaml, source: 'env' });
    assert.deepEqual(shown['max-rate'], { value: 50, source: 'file' });
    assert.deepEqual(shown['max-subscriptions'], { value: 64, source: 'file' });
    assert.deepEqual(shown['publish-key'], { value: '***', source: 'env' });
    for (const secret of Object.values(SECRETS)) assert.ok(!stdout.includes(secret) && !stderr.includes(secret), `${secret} is not printed`);
  });

  test('without a file: defaults, and --format=json', async () => {
    const { code, stdout } = await herald(['config', '--print', '--format=json']);
    assert.equal(code, 0);
    const shown = JSON.parse(stdout);
    assert.deepEqual(shown.config, { value: null, source: 'default' });
    assert.deepEqual(shown.port, { value: 8080, source: 'default' });
    assert.deepEqual(shown.engine, { value: 'memory', source: 'default' });
    assert.ok(Object.values(shown).every((setting: any) => setting.source === 'default'));
  });

  test('refuses as serve does, naming the file and key, exit code 2; no secret in the message', async () => {
    const bad = (name: string, text: string) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    for (const [args, env, pattern] of [
      [['--config', bad('rate.yaml', 'max-rate: fast\n')], {}, /^herald: .*rate\.yaml: max-rate: expected a number of messages per second from 0 to 1000000 \(0 = unlimited\), got "fast"\n$/],
      [['--config', bad('typo.yaml', 'max-rte: 5\n')], {}, /^herald: .*typo\.yaml: unknown setting "max-rte" \(did you mean max-rate\?\)\n$/],
      [['--config', bad('broken.yaml', `port: 1\njwt-secret: "${SECRETS.jwt}\n`)], {}, /^herald: .*broken\.yaml:\d+:\d+: not valid YAML: /],
      [['--config', bad('broken.json', `{"port": 1, "jwt-secret": ${SECRETS.jwt}}`)], {}, /^herald: .*broken\.json:1:\d+: not valid JSON: /],
      [['--config', bad('short.json', `{"admin-key": "${SECRETS.admin.slice(0, 10)}"}`)], {}, /short\.json: admin-key: expected a key of at least 16 characters, got a value of 10 characters/],
      [['--config', join(dir, 'missing.yml')], {}, /^herald: --config \(HERALD_CONFIG\): cannot read ".*missing\.yml"/],
      [[], { HERALD_CONFIG: join(dir, 'missing.json') }, /^herald: --config \(HERALD_CONFIG\): cannot read/],
      [['--timeout', 'soon'], {}, /--timeout \(HERALD_TIMEOUT\): expected a duration/],
      [['--format', 'xml'], {}, /--format: expected json or yaml, got "xml"/],
    ] as const) {
      const { code, stdout, stderr } = await herald(['config', '--print', ...args], { ...env });
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.equal(stdout, '');
      assert.match(stderr, pattern);
      for (const secret of Object.values(SECRETS)) assert.ok(!stderr.includes(secret) && !stderr.includes(secret.slice(0, 10)), `${secret} is not echoed`);
    }
    const { code, stderr } = await herald(['config']);
    assert.equal(code, 2);
    assert.match(stderr, /expected --print/);
  });

  test('herald config --help and the main usage tell of it; serve --help tells the precedence', async () => {
    const help = await herald(['config', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /herald config --print \[--format json\|yaml\]/);
    const usage = await herald(['help']);
    assert.match(usage.stdout, /^ {2}config {5}/m);
    assert.match(usage.stdout, /herald config --print/);
    const serve = await herald(['serve', '--help']);
    assert.match(serve.stdout, /--config +HERALD_CONFIG +JSON or YAML file/);
    assert.match(serve.stdout, /flag > environment variable > config file \(--config\) > default/);
  });
});
