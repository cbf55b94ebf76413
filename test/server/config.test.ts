import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseDuration, parseSize, resolveServeConfig } from '../../src/server/config.js';
import { createHerald } from '../../src/server/create-herald.js';

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
    assert.throws(() => createHerald({ paths: ['bayeux'] }), { code: 'HERALD_ERR_INVALID_OPTION', message: /path "bayeux"/ });
  });
});
