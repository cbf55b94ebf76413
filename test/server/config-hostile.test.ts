/**
 * Settings files an operator gets wrong, or that are not what they seem: keys given twice, keys
 * that YAML reads as numbers, files that are not files, key sets that hold no usable key, and
 * settings that contradict each other. Each is refused at start, by `herald serve` and `herald
 * config --print` alike (both resolve through resolveServeConfig), naming what is wrong.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createHerald } from '../../src/server/create-herald.js';
import { effectiveServeConfig, resolveServeConfig } from '../../src/server/config.js';
import { SETTINGS } from '../../src/server/settings.js';

const dir = mkdtempSync(join(tmpdir(), 'herald-hostile-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let count = 0;
const file = (name: string, text: string): string => {
  const folder = join(dir, String(count++));
  mkdirSync(folder);
  const path = join(folder, name);
  writeFileSync(path, text);
  return path;
};
const rejects = (argv: string[], pattern: RegExp, secret?: string) =>
  assert.throws(
    () => resolveServeConfig(argv, {}),
    (error: Error) => {
      assert.match(error.message, pattern);
      if (secret !== undefined) assert.ok(!error.message.includes(secret), `no secret in: ${error.message}`);
      return true;
    },
  );

const rsa = (bits: number) => generateKeyPairSync('rsa', { modulusLength: bits }).publicKey;

describe('settings files that are not what they seem', () => {
  test('a key given twice in a JSON file is refused (YAML refuses it too), in the config file and in the permissions file', () => {
    rejects(['--config', file('herald.json', '{"admin-key": "first-key-0123456789",\n "port": 1,\n "admin-key": "second-key-0123456789"}')], /herald\.json:3:\d+: a key is given twice in one object/, 'second-key');
    const rules = file('rules.json', '{"channels": {"/private/**": {"subscribe": "nobody"},\n "/private/**": {"subscribe": "anyone"}}}');
    rejects(['--permissions', rules], /--permissions \(HERALD_PERMISSIONS\): cannot read ".*rules\.json" as JSON: .*rules\.json:2:\d+: a key is given twice/);
    rejects(['--config', file('herald.yaml', 'port: 1\nport: 2\n')], /herald\.yaml:2:1: not valid YAML: Map keys must be unique/);
  });

  test('a key or a name the file gives as a number or a boolean is refused: YAML would have changed it', () => {
    const digits = '1234567890123456789';
    rejects(['--config', file('herald.yaml', `admin-key: ${digits}\n`)], /herald\.yaml: admin-key: expected a key of at least 16 characters written as a string \(in quotes\), got a number$/, digits);
    rejects(['--config', file('herald.json', `{"publish-key": ${digits}}`)], /publish-key: .*written as a string \(in quotes\), got a number$/, digits);
    rejects(['--config', file('herald.yaml', 'jwt-audience: 12345678901234567890\n')], /jwt-audience: expected text written as a string/);
    rejects(['--config', file('herald.yaml', 'host: 0x7f000001\n')], /host: expected a host name or address written as a string/);
    assert.equal(resolveServeConfig(['--config', file('herald.yaml', `admin-key: "${digits}"\nport: 8081\n`)], {}).herald.adminKey, digits, 'quoted, it is taken as written');
  });

  test('a file that is not a regular file, or larger than any settings file, is refused at once', () => {
    const fifo = join(dir, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    rejects(['--config', fifo], /--config \(HERALD_CONFIG\): cannot read ".*fifo\.json": not a regular file/);
    rejects(['--permissions', fifo], /cannot read ".*fifo\.json" as JSON: not a regular file/);
    rejects(['--jwks', fifo], /--jwks \(HERALD_JWKS\): cannot read ".*fifo\.json": not a regular file/);
    rejects(['--jwt-public-key', dir], /cannot read ".*": not a regular file/);
    const huge = file('huge.yaml', `# ${'x'.repeat(5 * 1024 * 1024)}\n`);
    rejects(['--config', huge], /cannot read ".*huge\.yaml": \d+ bytes, more than the \d+ a settings file may have/);
  });

  test('a key set with no usable key, or a public key no token could be checked with, is refused at start', () => {
    const good = rsa(2048).export({ format: 'jwk' });
    rejects(['--jwks', file('empty.json', '{"keys": []}')], /--jwks \(HERALD_JWKS\) ".*empty\.json": jwks holds no keys/);
    rejects(['--jwks', file('oct.json', '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')], /jwks key 1 is not an RSA or EC public key/);
    rejects(['--jwks', file('short.json', JSON.stringify({ keys: [good, { ...rsa(1024).export({ format: 'jwk' }), kid: 'old' }] }))], /jwks key 2 \(kid "old"\) is an RSA key of 1024 bits: RS256 needs at least 2048/);
    rejects(['--jwks', file('p384.json', JSON.stringify({ keys: [generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' })] }))], /must be an RSA \(RS256\) or P-256 \(ES256\) key, got ec secp384r1/);
    rejects(['--jwt-public-key', file('bad.pem', '-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n')], /--jwt-public-key \(HERALD_JWT_PUBLIC_KEY\) ".*bad\.pem": jwtPublicKey is not a PEM public key/);
    assert.deepEqual(resolveServeConfig(['--jwks', file('good.json', JSON.stringify({ keys: [good] }))], {}).herald.jwks, { keys: [good] });
    assert.throws(() => createHerald({ jwks: { keys: [] } }), { code: 'HERALD_ERR_INVALID_OPTION', message: /jwks holds no keys/ });
  });

  test('settings that contradict each other are refused by config --print as by serve', () => {
    rejects(['--drain-window', '2s', '--shutdown-grace', '1s'], /drainWindowMs \(2000\) must not exceed shutdownGraceMs \(1000\)/);
    rejects(['--transports', 'websocket'], /transports must include long-polling or callback-polling/);
  });

  test('config --print shows no secret, whichever way it was given', () => {
    const values: Record<string, string> = {
      'publish-key': 'publish-secret-0123456789',
      'admin-key': 'admin-secret-0123456789',
      'jwt-secret': 'jwt-secret-0123456789-0123456789-0123',
      'hook-secret': 'hook-secret-0123456789',
      'connect-hook': 'https://app.example/hooks/connect?key=connect-hook-secret-0123',
      'subscribe-hook': 'https://hooks:subscribe-hook-pass@app.example/hooks/subscribe',
      'publish-hook': 'https://app.example/hooks/publish?key=publish-hook-secret-0123',
      'webhook-secret': 'webhook-secret-0123456789',
      'webhook-url': 'https://app.example/hooks/a?key=webhook-url-secret-0123,https://hooks:webhook-url-pass@app.example/b',
    };
    const secrets = SETTINGS.filter((setting) => setting.secret === true && setting.flag !== undefined && setting.flag !== 'engine').map((setting) => setting.flag!);
    assert.deepEqual(secrets.sort(), Object.keys(values).sort(), 'every secret setting is tried');
    const password = 'redis-pass@word';
    const argv = ['--publish-key', values['publish-key']!, '--engine', `redis://user:${password}@cache:6379/1`, '--connect-hook', values['connect-hook']!];
    const env = { HERALD_ADMIN_KEY: values['admin-key']!, HERALD_HOOK_SECRET: values['hook-secret']!, HERALD_SUBSCRIBE_HOOK: values['subscribe-hook']!, HERALD_WEBHOOK_SECRET: values['webhook-secret']!, HERALD_WEBHOOK_URL: values['webhook-url']! };
    const config = file('herald.yaml', `jwt-secret: "${values['jwt-secret']}"\npublish-hook: "${values['publish-hook']}"\n`);
    const shown = JSON.stringify(effectiveServeConfig([...argv, '--config', config], env));
    for (const secret of [...Object.values(values), password, 'pass@word', 'connect-hook-secret-0123', 'subscribe-hook-pass', 'publish-hook-secret-0123', 'webhook-url-secret-0123', 'webhook-url-pass']) assert.ok(!shown.includes(secret), `${secret} not shown`);
    assert.match(shown, /"engine":\{"value":"redis:\/\/user:\*\*\*@cache:6379\/1"/);
  });
});
