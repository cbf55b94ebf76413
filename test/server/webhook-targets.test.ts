/**
 * Webhook receivers with filters of their own from `herald serve`'s flag, variable and config
 * file (`URL events=a,b`, or a file's list of `{url, events}`), shown by `herald config --print`,
 * and refused — naming the fault and where it came from — when wrong.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { effectiveServeConfig, resolveServeConfig } from '../../src/server/config.js';

const SECRET = ['--webhook-secret', 'webhook-secret-0123456789'];

function withFile(t: { after(fn: () => unknown): void }, name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'herald-webhooks-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('webhook receivers from serve settings', () => {
  test('a flag or variable: URLs by commas, each with its own events= filter or none', () => {
    const text = 'https://app/presence events=user.online,user.offline, https://app/audit events=subscribe publish,http://app/all';
    const expected = [{ url: 'https://app/presence', events: ['user.online', 'user.offline'] }, { url: 'https://app/audit', events: ['subscribe', 'publish'] }, 'http://app/all'];
    assert.deepEqual(resolveServeConfig(['--webhook-url', text, ...SECRET], {}).herald.webhooks, expected);
    assert.deepEqual(resolveServeConfig(SECRET, { HERALD_WEBHOOK_URL: text }).herald.webhooks, expected);
    assert.deepEqual(resolveServeConfig(['--webhook-url', 'https://a/1,https://a/2', ...SECRET], {}).herald.webhooks, ['https://a/1', 'https://a/2'], 'bare URLs as before');
    assert.deepEqual(effectiveServeConfig(['--webhook-url', 'https://user:pw@app/hook events=publish', ...SECRET], {})['webhook-url']!.value, ['https://user:***@app/hook events=publish']);
  });

  test('a config file: a list of {url, events} mappings and strings', (t) => {
    const path = withFile(t, 'herald.json', JSON.stringify({ 'webhook-secret': 'webhook-secret-0123456789', 'webhook-url': [{ url: 'https://app/users', events: ['user.online', 'user.offline'] }, 'https://app/pubs events=publish', { url: 'https://app/all' }] }));
    assert.deepEqual(resolveServeConfig(['--config', path], {}).herald.webhooks, [{ url: 'https://app/users', events: ['user.online', 'user.offline'] }, { url: 'https://app/pubs', events: ['publish'] }, 'https://app/all']);
    const yaml = withFile(t, 'herald.yaml', "webhook-secret: webhook-secret-0123456789\nwebhook-url: https://app/hook events=channel.vacated\n");
    assert.deepEqual(resolveServeConfig(['--config', yaml], {}).herald.webhooks, [{ url: 'https://app/hook', events: ['channel.vacated'] }]);
  });

  test('bad values are refused at startup, naming the fault and where it came from', (t) => {
    const refused = (text: string, message: RegExp) => assert.throws(() => resolveServeConfig(['--webhook-url', text, ...SECRET], {}), { code: 'HERALD_ERR_INVALID_OPTION', message });
    refused('https://app/hook events=user.away', /^--webhook-url \(HERALD_WEBHOOK_URL\): unknown webhook event "user.away" \(known: channel.occupied, .*publish\)$/);
    refused('events=publish https://app/hook', /"events=" must follow the URL it filters/);
    refused('https://app/hook events=', /https:\/\/app\/hook has "events=" without events/);
    refused('https://app/hook events=publish events=subscribe', /has "events=" twice/);
    refused('https://app/hook, https://app/hook events=publish', /https:\/\/app\/hook is given twice/);
    refused('https://app/hook nonsense', /expected an http:\/\/ or https:\/\/ URL, got "nonsense"$/);
    refused('htps://user:hunter2@app/hook', /got a word of 28 characters that is not one$/);
    assert.throws(() => resolveServeConfig([], { HERALD_WEBHOOK_URL: 'https://app/hook events=nope', HERALD_WEBHOOK_SECRET: 'webhook-secret-0123456789' }), { message: /^--webhook-url \(HERALD_WEBHOOK_URL\): unknown webhook event "nope"/ });
    const file = (value: unknown) => withFile(t, 'herald.json', JSON.stringify({ 'webhook-secret': 'webhook-secret-0123456789', 'webhook-url': value }));
    const refusedInFile = (value: unknown, message: RegExp) => assert.throws(() => resolveServeConfig(['--config', file(value)], {}), { code: 'HERALD_ERR_INVALID_OPTION', message });
    refusedInFile([{ url: 'https://app/hook', events: ['user.gone'] }], /herald.json: webhook-url\[0\]: unknown webhook event "user.gone"/);
    refusedInFile([{ url: 'https://app/hook', filter: ['publish'] }], /webhook-url\[0\]: unknown key "filter"/);
    refusedInFile([{ url: 'ftp://app/hook' }], /webhook-url\[0\]: url must be an http:\/\/ or https:\/\/ URL/);
    refusedInFile([{ url: 'https://app/hook', events: [] }], /webhook-url\[0\]: events must be a non-empty list/);
    refusedInFile({ url: 'https://app/hook' }, /webhook-url: expected a list of URLs/);
    refusedInFile([], /webhook-url: expected a list of URLs/);
  });
});
