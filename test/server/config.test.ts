import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { effectiveServeConfig, parseDuration, parseSize, resolveServeConfig, SERVE_SETTINGS } from '../../src/server/config.js';
import { createHerald } from '../../src/server/create-herald.js';
import { defaultText, envOf, SETTINGS } from '../../src/server/settings.js';
import { MEMORY_ENGINE_DEFAULTS, MemoryEngine } from '../../src/core/memory-engine.js';
import { REDIS_ENGINE_DEFAULTS } from '../../src/engines/redis/redis-engine.js';
import { HERALD_DEFAULTS } from '../../src/server/create-herald.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest } from '../helpers/http.js';

describe('serve configuration', () => {
  test('parses durations and sizes with units', () => {
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('250'), 250);
    assert.equal(parseDuration('-1s'), undefined);
    assert.equal(parseDuration('soon'), undefined);
    assert.equal(parseSize('1mb'), 1024 * 1024);
    assert.equal(parseSize('64KB'), 65_536);
    assert.equal(parseSize('100'), 100);
    assert.equal(parseSize('0'), undefined);
    assert.equal(parseSize('big'), undefined);
  });

  test('flag, then environment, then default', () => {
    const env = { HERALD_TIMEOUT: '5s', HERALD_HOST: '0.0.0.0', HERALD_ALLOWED_ORIGINS: 'https://a.example, localhost' };
    const config = resolveServeConfig(['--timeout', '9s', '-p', '9000'], env);
    assert.equal(config.port, 9000);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.logLevel, 'info');
    assert.equal(config.herald.timeoutMs, 9000);
    assert.deepEqual(config.herald.allowedOrigins, ['https://a.example', 'localhost']);
    assert.equal(config.herald.maxIntervalMs, undefined, 'left to the library default');
    assert.equal(resolveServeConfig([], {}).port, 8080);
  });

  test('the demo pages are on unless switched off', () => {
    assert.equal(resolveServeConfig([], {}).herald.demo, true);
    assert.equal(resolveServeConfig(['--demo', 'off'], {}).herald.demo, false);
    assert.equal(resolveServeConfig([], { HERALD_DEMO: 'no' }).herald.demo, false);
    assert.throws(() => resolveServeConfig(['--demo', 'maybe'], {}), { code: 'HERALD_ERR_INVALID_OPTION', message: /--demo \(HERALD_DEMO\): expected on or off/ });
  });

  test('the engine is memory unless a Redis URL is given; a password in a bad URL is never echoed', () => {
    assert.equal(resolveServeConfig([], {}).herald.engine, undefined);
    assert.equal(resolveServeConfig(['--engine', 'memory'], {}).herald.engine, 'memory');
    assert.equal(resolveServeConfig([], { HERALD_ENGINE: 'redis://10.0.0.5:6380' }).herald.engine, 'redis://10.0.0.5:6380');
    assert.equal(resolveServeConfig(['--engine', 'rediss://:s3cret@cache:6379/2'], {}).herald.engine, 'rediss://:s3cret@cache:6379/2');
    for (const bad of ['redis:/nohost', 'postgres://db:5432', 'memcache', 'redis://:hunter2@']) {
      assert.throws(
        () => resolveServeConfig(['--engine', bad], {}),
        (error: Error) => /--engine \(HERALD_ENGINE\): expected memory or a redis/.test(error.message) && !error.message.includes('hunter2'),
        bad,
      );
    }
    assert.throws(() => createHerald({ engine: 'mongodb://x' }), { code: 'HERALD_ERR_INVALID_OPTION', message: /engine must be/ });
  });

  test('createHerald rejects options it cannot use, naming them', () => {
    assert.throws(() => createHerald({ timeoutMs: -1 }), { code: 'HERALD_ERR_INVALID_OPTION', message: /timeoutMs/ });
    assert.throws(() => createHerald({ maxQueue: 0 }), { code: 'HERALD_ERR_INVALID_OPTION', message: /maxQueue/ });
    assert.throws(() => createHerald({ paths: ['bayeux'] }), { code: 'HERALD_ERR_INVALID_OPTION', message: /^paths must be .*start with \/.*, got \["bayeux"\]$/ });
  });
});

/** The README's table of serve settings, as the list of settings writes it. */
function settingsTable(): string {
  const rows = SETTINGS.filter((s) => s.flag !== undefined).map((s) => {
    const flag = `\`--${s.flag}\`${s.short === undefined ? '' : `, \`-${s.short}\``}`;
    return `| ${flag} | \`${envOf(s)}\` | ${defaultText(s)} | ${s.kind.range ?? '—'} | ${s.help} |`;
  });
  return ['| flag | environment | default | range | meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}

describe('one list of settings', () => {
  test("the README's table of serve settings is the list's, row for row", () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const table = /## `herald serve`\n\n(\|[^\n]*\n)+/.exec(readme)?.[0].split('\n').slice(2).join('\n').trim();
    assert.equal(table, settingsTable());
  });

  test('every duration and size has a range, enforced from flags, files and createHerald alike, naming the setting', () => {
    for (const setting of SETTINGS) {
      if (/duration|size|number/.test(setting.kind.expected)) assert.ok(setting.kind.range !== undefined, `${setting.flag ?? setting.option} has a range`);
    }
    // 700h would overflow the timer: every held connect would return at once and clients spin.
    assert.throws(() => resolveServeConfig(['--timeout', '700h'], {}), { code: 'HERALD_ERR_INVALID_OPTION', message: /^--timeout \(HERALD_TIMEOUT\): expected a duration .* from 10ms to 1h, got "700h"$/ });
    assert.throws(() => resolveServeConfig([], { HERALD_MAX_BODY: '2gb' }), { message: /^--max-body \(HERALD_MAX_BODY\): expected a size .* to 256mb, got "2gb"$/ });
    assert.throws(() => resolveServeConfig([], { HERALD_HISTORY_TTL: '30d' }), { message: /^--history-ttl \(HERALD_HISTORY_TTL\): expected a duration/ });
    assert.throws(() => createHerald({ timeoutMs: 700 * 3_600_000 }), { code: 'HERALD_ERR_INVALID_OPTION', message: /^timeoutMs must be a number of milliseconds from 10 to 3600000 \(10ms–1h\), got 2520000000$/ });
    assert.throws(() => createHerald({ heartbeatMs: 0 }), { message: /^heartbeatMs must be a number of milliseconds from 10/ });
    assert.throws(() => createHerald({ pingIntervalMs: 2 ** 31 }), { message: /^pingIntervalMs must be/ });
    assert.throws(() => createHerald({ maxBufferedBytes: 1.5 }), { message: /^maxBufferedBytes must be a whole number of bytes/ });
    assert.throws(() => createHerald({ maxSessionsPerBrowser: -2 }), { message: /^maxSessionsPerBrowser must be/ });
    assert.throws(() => createHerald({ trustedProxies: ['10.0.0.0/33'] }), { message: /^trustedProxies must be/ });
    assert.equal(resolveServeConfig(['--timeout', '1h', '--history-ttl', '7d'], {}).herald.historyTtlMs, 7 * 24 * 3_600_000);
  });

  test('createHerald and every engine keep the same history by default: resume works whatever engine is given', async (t) => {
    assert.equal(REDIS_ENGINE_DEFAULTS.historySize, HERALD_DEFAULTS.historySize);
    assert.equal(MEMORY_ENGINE_DEFAULTS.historySize, HERALD_DEFAULTS.historySize);
    const { port, herald } = await startHerald(t, { engine: new MemoryEngine() });
    await herald.publish('/resume', 1);
    await herald.publish('/resume', 2);
    const history = (await httpRequest(port, { path: '/history/resume' })).json();
    assert.deepEqual(history.messages.map((m: any) => m.data), [1, 2], 'an engine built without options keeps history');
  });
});

describe('serve configuration file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let count = 0;
  /** Writes `text` to a fresh file named `name` (in its own folder) and returns its path. */
  const file = (name: string, text: string): string => {
    const folder = join(dir, String(count++));
    mkdirSync(folder);
    const path = join(folder, name);
    writeFileSync(path, text);
    return path;
  };
  const rejects = (argv: string[], env: NodeJS.ProcessEnv, pattern: RegExp, secret?: string) =>
    assert.throws(
      () => resolveServeConfig(argv, env),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'HERALD_ERR_INVALID_OPTION');
        assert.match(error.message, pattern);
        if (secret !== undefined) assert.ok(!error.message.includes(secret), `${secret} not echoed in ${error.message}`);
        return true;
      },
    );

  test('flag, then environment variable, then config file, then default, for the same setting', () => {
    const yaml = file('herald.yaml', 'max-rate: 50\n');
    const rate = (argv: string[], env: NodeJS.ProcessEnv) => {
      const config = resolveServeConfig(argv, env);
      const effective = effectiveServeConfig(argv, env)['max-rate']!;
      assert.equal(effective.value, config.herald.maxMessageRate ?? 100);
      return [config.herald.maxMessageRate, effective.source];
    };
    assert.deepEqual(rate(['--config', yaml, '--max-rate', '9'], { HERALD_MAX_RATE: '7' }), [9, 'flag']);
    assert.deepEqual(rate(['--config', yaml], { HERALD_MAX_RATE: '7' }), [7, 'env']);
    assert.deepEqual(rate(['--config', yaml], { HERALD_MAX_RATE: '' }), [50, 'file'], 'an empty variable is unset');
    assert.deepEqual(rate([], { HERALD_CONFIG: yaml }), [50, 'file'], 'the file named by HERALD_CONFIG');
    assert.deepEqual(rate(['--config', file('empty.yaml', '# nothing yet\n')], {}), [undefined, 'default']);
    assert.equal(effectiveServeConfig([], {})['max-rate']!.value, 100, 'the default shown is the one in force');
    // The file a flag names wins over the one a variable names.
    const other = file('other.json', '{"max-rate": 60}');
    assert.equal(resolveServeConfig(['--config', other], { HERALD_CONFIG: yaml }).herald.maxMessageRate, 60);
    assert.deepEqual(effectiveServeConfig(['--config', other], { HERALD_CONFIG: yaml }).config, { value: other, source: 'flag' });
  });

  test('YAML and JSON files take the flags’ texts or native numbers, booleans and lists; camelCase keys too', () => {
    const yaml = file(
      'herald.yml',
      ['port: 9001', 'host: 0.0.0.0', 'timeout: 20000', 'max-interval: 15s', 'maxBody: 64kb', 'demo: off', 'allowed-origins: [https://a.example, localhost]', 'transports:', '  - websocket', '  - long-polling', 'slowConsumer: drop-oldest', 'log-level: warn', 'path: /push'].join('\n'),
    );
    const fromYaml = resolveServeConfig(['--config', yaml], {});
    const json = file(
      'herald.json',
      JSON.stringify({ port: '9001', host: '0.0.0.0', timeout: '20s', maxInterval: 15000, 'max-body': 65536, demo: false, allowedOrigins: 'https://a.example,localhost', transports: ['websocket', 'long-polling'], 'slow-consumer': 'drop-oldest', logLevel: 'warn', path: ['/push'] }),
    );
    const fromJson = resolveServeConfig(['--config', json], {});
    for (const config of [fromYaml, fromJson]) {
      assert.equal(config.port, 9001);
      assert.equal(config.host, '0.0.0.0');
      assert.equal(config.logLevel, 'warn');
      assert.equal(config.herald.timeoutMs, 20_000);
      assert.equal(config.herald.maxIntervalMs, 15_000);
      assert.equal(config.herald.maxBodyBytes, 65_536);
      assert.equal(config.herald.demo, false);
      assert.deepEqual(config.herald.allowedOrigins, ['https://a.example', 'localhost']);
      assert.deepEqual(config.herald.transports, ['websocket', 'long-polling']);
      assert.equal(config.herald.slowConsumer, 'drop-oldest');
      assert.deepEqual(config.herald.paths, ['/push']);
    }
    assert.deepEqual(fromYaml, fromJson);
    const shown = effectiveServeConfig(['--config', yaml], {});
    assert.deepEqual(shown.timeout, { value: '20s', source: 'file' });
    assert.deepEqual(shown['max-body'], { value: '64kb', source: 'file' });
    assert.deepEqual(shown.demo, { value: false, source: 'file' });
    assert.deepEqual(shown['history-ttl'], { value: '0s', source: 'default' });
    assert.deepEqual(shown['drain-window'], { value: '3s', source: 'default' });
    assert.deepEqual(Object.keys(shown), Object.keys(SERVE_SETTINGS), 'every setting is shown');
  });

  test("the README's example config file is valid", () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const example = /### Config file[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(example !== undefined, 'README has a YAML example under ### Config file');
    const config = resolveServeConfig(['--config', file('herald.yaml', example)], {});
    assert.equal(config.herald.maxMessageRate, 50);
    assert.equal(config.herald.permissions?.clientPublish, false);
  });

  test('permissions inline in the file, or a file path relative to the config file', () => {
    const rules = { clientPublish: false, channels: [{ pattern: '/chat/**', subscribe: 'anyone', publish: 'token' }, { pattern: '/admin/*', subscribe: { claim: 'role', equals: 'admin' } }] };
    const yaml = file('herald.yaml', ['permissions:', '  clientPublish: false', '  channels:', '    - pattern: /chat/**', '      subscribe: anyone', '      publish: token', '    - pattern: /admin/*', '      subscribe: { claim: role, equals: admin }', ''].join('\n'));
    assert.deepEqual(resolveServeConfig(['--config', yaml], {}).herald.permissions, rules);
    assert.deepEqual(effectiveServeConfig(['--config', yaml], {}).permissions, { value: rules, source: 'file' });
    const json = file('herald.json', JSON.stringify({ permissions: 'rules.json' }));
    writeFileSync(join(json, '..', 'rules.json'), JSON.stringify(rules));
    assert.deepEqual(resolveServeConfig(['--config', json], {}).herald.permissions, rules, 'found beside the config file');
    assert.deepEqual(effectiveServeConfig(['--config', json], {}).permissions, { value: join(json, '..', 'rules.json'), source: 'file' });
    rejects(['--config', file('bad.yaml', 'permissions:\n  channels:\n    - pattern: chat\n')], {}, /bad\.yaml: permissions\.channels\[0\]\.pattern must be a channel/);
    rejects(['--config', file('bad.yaml', 'permissions: { clientPublish: sometimes }\n')], {}, /bad\.yaml: permissions\.clientPublish must be true or false/);
    rejects(['--config', file('bad.yaml', 'permissions: missing.json\n')], {}, /bad\.yaml: permissions: cannot read ".*missing\.json" as JSON/);
    rejects(['--config', file('bad.yaml', 'permissions: [1]\n')], {}, /bad\.yaml: permissions: expected a JSON file of channel rules, got \[1\]/);
  });

  test('a bad value names the file and the key as written in it', () => {
    const yaml = file('herald.yaml', 'max-rate: fast\n');
    rejects(['--config', yaml], {}, new RegExp(`^${yaml.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: max-rate: expected a number of messages per second from 0 to 1000000 \\(0 = unlimited\\), got "fast"$`));
    rejects(['--config', file('herald.yaml', 'maxRate: -1\n')], {}, /herald\.yaml: maxRate: expected a number of messages per second from 0 to 1000000 \(0 = unlimited\), got -1$/);
    rejects(['--config', file('herald.yaml', 'timeout: soon\n')], {}, /herald\.yaml: timeout: expected a duration such as 30s/);
    rejects(['--config', file('herald.yaml', 'port: 99999\n')], {}, /herald\.yaml: port: expected a port number from 0 to 65535, got 99999$/);
    rejects(['--config', file('herald.yaml', 'port:\n')], {}, /herald\.yaml: port: expected a port number from 0 to 65535, got null$/);
    rejects(['--config', file('herald.yaml', 'port: [1, 2]\n')], {}, /herald\.yaml: port: expected a port number from 0 to 65535, got \[1,2\]$/);
    rejects(['--config', file('herald.json', '{"transports": ["websocket", "carrier-pigeon"]}')], {}, /herald\.json: transports: expected some of websocket, .*, got \["websocket","carrier-pigeon"\]$/);
    rejects(['--config', file('herald.json', '{"demo": "maybe"}')], {}, /herald\.json: demo: expected on or off, got "maybe"/);
    rejects(['--config', file('herald.json', '{"host": {"name": "x"}}')], {}, /herald\.json: host: expected a host name or address, got \{"name":"x"\}/);
    // The file is checked whole, even where a flag wins over it.
    rejects(['--config', file('herald.yaml', 'max-rate: fast\n'), '--max-rate', '5'], {}, /herald\.yaml: max-rate: expected a number/);
    // Flags and variables keep their own names in messages.
    rejects(['--config', file('herald.yaml', 'max-rate: 5\n')], { HERALD_MAX_RATE: 'fast' }, /^--max-rate \(HERALD_MAX_RATE\): expected a number/);
  });

  test('an unknown key is refused, with the setting it most likely meant', () => {
    rejects(['--config', file('herald.yaml', 'max-rte: 5\n')], {}, /herald\.yaml: unknown setting "max-rte" \(did you mean max-rate\?\)$/);
    rejects(['--config', file('herald.yaml', 'HERALD_MAX_RATE: 5\n')], {}, /unknown setting "HERALD_MAX_RATE" \(did you mean max-rate\?\)$/);
    rejects(['--config', file('herald.json', '{"maxSessionsPerIP": 5}')], {}, /herald\.json: unknown setting "maxSessionsPerIP" \(did you mean max-sessions-per-ip\?\)$/);
    rejects(['--config', file('herald.json', '{"paths": ["/a"]}')], {}, /unknown setting "paths" \(did you mean path\?\)$/);
    rejects(['--config', file('herald.yaml', 'colour: blue\n')], {}, /herald\.yaml: unknown setting "colour"$/);
    rejects(['--config', file('herald.yaml', 'max-rate: 5\nmaxRate: 6\n')], {}, /herald\.yaml: max-rate is given twice \(max-rate and maxRate\)/);
    rejects(['--config', file('herald.yaml', 'config: other.yaml\n')], {}, /herald\.yaml: config: a config file cannot name another/);
  });

  test('a file that cannot be read or parsed is named, with the line and column of the fault', () => {
    rejects(['--config', join(dir, 'nowhere.yaml')], {}, /^--config \(HERALD_CONFIG\): cannot read ".*nowhere\.yaml": ENOENT/);
    rejects([], { HERALD_CONFIG: dir + '/nowhere.json' }, /^--config \(HERALD_CONFIG\): cannot read/);
    rejects(['--config', file('herald.toml', 'port = 1\n')], {}, /^--config \(HERALD_CONFIG\): expected a \.json, \.yaml or \.yml file, got ".*herald\.toml"$/);
    rejects(['--config', file('herald.yaml', 'port: 8080\nmax-rate: [1, 2\nhost: x\n')], {}, /herald\.yaml:3:1: not valid YAML: /);
    rejects(['--config', file('herald.yaml', 'port: 8080\nport: 8081\n')], {}, /herald\.yaml:2:1: not valid YAML: Map keys must be unique/);
    rejects(['--config', file('herald.json', '{\n  "port": 8080,\n}\n')], {}, /herald\.json:3:1: not valid JSON: /);
    rejects(['--config', file('herald.json', '{\n  "port": eighty\n}')], {}, /herald\.json:2:11: not valid JSON: Unexpected token$/);
    rejects(['--config', file('herald.json', '')], {}, /herald\.json:1:1: not valid JSON: Unexpected end of JSON input/);
    rejects(['--config', file('herald.yaml', '- port: 8080\n')], {}, /herald\.yaml: expected a mapping of settings \(such as port: 8080\), got a list/);
    rejects(['--config', file('herald.json', '"port"')], {}, /herald\.json: expected a mapping of settings/);
  });

  test('secrets from a file are used, masked when shown, and never echoed in a refusal', () => {
    const secrets = { publish: 'pk-0123456789abcdef', admin: 'ak-0123456789abcdef', jwt: 'jwt-secret-0123456789abcdef0123456789', password: 'hunter2hunter2' };
    const yaml = file(
      'herald.yaml',
      `publish-key: ${secrets.publish}\nadminKey: ${secrets.admin}\njwt-secret: ${secrets.jwt}\nengine: redis://herald:${secrets.password}@cache:6379/2\n`,
    );
    const config = resolveServeConfig(['--config', yaml], {});
    assert.equal(config.herald.publishKey, secrets.publish);
    assert.equal(config.herald.adminKey, secrets.admin);
    assert.equal(config.herald.jwtSecret, secrets.jwt);
    assert.equal(config.herald.engine, `redis://herald:${secrets.password}@cache:6379/2`);
    const shown = effectiveServeConfig(['--config', yaml], {});
    assert.deepEqual(shown['publish-key'], { value: '***', source: 'file' });
    assert.deepEqual(shown['admin-key'], { value: '***', source: 'file' });
    assert.deepEqual(shown['jwt-secret'], { value: '***', source: 'file' });
    assert.deepEqual(shown.engine, { value: 'redis://herald:***@cache:6379/2', source: 'file' });
    const text = JSON.stringify(shown);
    for (const secret of Object.values(secrets)) assert.ok(!text.includes(secret), secret);
    // From flags and variables too; unset secrets show as null, the memory engine as itself.
    const fromArgs = effectiveServeConfig(['--publish-key', secrets.publish, '--engine', 'memory'], { HERALD_JWT_SECRET: secrets.jwt });
    assert.deepEqual(fromArgs['publish-key'], { value: '***', source: 'flag' });
    assert.deepEqual(fromArgs['jwt-secret'], { value: '***', source: 'env' });
    assert.deepEqual(fromArgs['admin-key'], { value: null, source: 'default' });
    assert.deepEqual(fromArgs.engine, { value: 'memory', source: 'flag' });
    assert.deepEqual(effectiveServeConfig([], {}).engine, { value: 'memory', source: 'default' });
    assert.deepEqual(effectiveServeConfig(['--engine', 'redis://cache:6379'], {}).engine, { value: 'redis://cache:6379', source: 'flag' });

    rejects(['--config', file('herald.yaml', 'publish-key: short-secret\n')], {}, /herald\.yaml: publish-key: expected a key of at least 16 characters, got a value of 12 characters$/, 'short-secret');
    rejects(['--config', file('herald.yaml', 'engine: redis://:hunter2@\n')], {}, /herald\.yaml: engine: expected memory or a redis/, 'hunter2');
    rejects(['--config', file('herald.yaml', 'jwt-secret: [topsecret]\n')], {}, /herald\.yaml: jwt-secret: expected a secret of at least 32 characters, got a list$/, 'topsecret');
    rejects(['--config', file('herald.yaml', 'jwt-secret: "topsecret\nport: 1\n')], {}, /herald\.yaml:\d+:\d+: not valid YAML/, 'topsecret');
    rejects(['--config', file('herald.yaml', 'port: 1\n b: topsecret\n')], {}, /herald\.yaml:\d+:\d+: not valid YAML/, 'topsecret');
    rejects(['--config', file('herald.json', '{"jwt-secret": topsecret}')], {}, /herald\.json:1:16: not valid JSON/, 'topsecret');
    rejects(['--config', file('herald.json', '{"jwt-secret": "topsecret" "port": 1}')], {}, /herald\.json:1:\d+: not valid JSON/, 'topsecret');
  });
});
