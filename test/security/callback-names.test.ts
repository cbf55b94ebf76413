/**
 * Callback names are written into JavaScript that Herald's origin serves: `/**\/name([...]);` for
 * JSONP, `parent.name(m)` in the forever iframe. Every door takes them through one check: a dotted
 * identifier (`app.onMessage`), at most 64 characters, no reserved word and nothing that reaches
 * code from a string (`constructor`, `eval`, …). Anything else is a 400 that does not echo it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { callbackName } from '../../src/transports/callback-polling.js';
import { startHerald } from '../helpers/herald.js';
import { httpRequest, openStream } from '../helpers/http.js';

const HANDSHAKE = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['callback-polling'], id: '1' };

const HOSTILE = [
  'length-alert', 'a;alert(1)', 'a[0]', 'constructor.constructor', 'a.constructor', '__proto__', 'x.prototype.y', 'eval', 'Function',
  'a..b', '.a', 'a.', '1a', 'a.1b', 'a b', 'a\u2028b', 'ａlert', 'a\u200bb', 'caf\u00e9', 'a\u0000', '\\u0061lert', 'a//', 'a/**/b',
  'new', 'this.x', 'x.delete', 'typeof', '<script>', 'a'.repeat(65), 'a'.repeat(2048), 'a.'.repeat(1024) + 'a',
];
const FINE = ['cb', 'jsonpcallback', '_cometd_jsonp_3', '__jsonp12__', '__herald0abc123_4', 'jQuery3510_17', 'app.onMessage', '$', '$.x_1', 'a'.repeat(64)];

/** The rule, written independently of the code under test. */
const RESERVED = /^(?:break|case|catch|class|const|continue|debugger|default|delete|do|else|enum|export|extends|false|finally|for|function|if|implements|import|in|instanceof|interface|let|new|null|package|private|protected|public|return|static|super|switch|this|throw|true|try|typeof|var|void|while|with|yield|await|arguments|constructor|prototype|__proto__|eval|Function|setTimeout|setInterval)$/;
function isSafe(name: string): boolean {
  return name.length <= 64 && /^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$/.test(name) && !name.split('.').some((part) => RESERVED.test(part));
}

/** Each door that writes a callback name: the status it answers for `name`, and the body. */
const DOORS: Record<string, (port: number, name: string, t: { after(fn: () => unknown): void }) => Promise<{ status: number; text: string }>> = {
  'REST JSONP': (port, name) => httpRequest(port, { path: `/sub/cbn?wait=0&callback=${encodeURIComponent(name)}` }),
  'REST iframe': async (port, name, t) => {
    const { res, req, text } = await openStream(port, `/sub/cbn?transport=iframe&callback=${encodeURIComponent(name)}`, {}, t);
    if (res.statusCode === 200) {
      await new Promise<void>((resolve) => (text().includes('parent.') ? resolve() : res.once('data', () => resolve())));
      req.destroy();
      return { status: 200, text: text() };
    }
    await new Promise((resolve) => res.once('end', resolve));
    return { status: res.statusCode ?? 0, text: text() };
  },
  'Bayeux callback-polling': (port, name) => httpRequest(port, { path: `/bayeux?jsonp=${encodeURIComponent(name)}&message=${encodeURIComponent(JSON.stringify([HANDSHAKE]))}` }),
};

describe('callback names', () => {
  test('the one check: dotted identifiers only, bounded, no reserved or code-reaching words', () => {
    for (const name of HOSTILE) assert.equal(callbackName(name), undefined, name);
    for (const name of FINE) assert.equal(callbackName(name), name, name);
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.stringMatching(/^[A-Za-z_$.][\w$.]{0,70}$/), fc.constantFrom(...HOSTILE, ...FINE)), (name) => {
        assert.equal(callbackName(name) !== undefined, isSafe(name), JSON.stringify(name));
      }),
      { numRuns: 2000 },
    );
  });

  test('every door refuses a hostile name with 400 without echoing it, and calls a fine one by that name', async (t) => {
    const { port } = await startHerald(t);
    for (const [door, knock] of Object.entries(DOORS)) {
      for (const name of HOSTILE) {
        const res = await knock(port, name, t);
        assert.equal(res.status, 400, `${door}: ${JSON.stringify(name.slice(0, 40))}`);
        assert.match(JSON.parse(res.text).error, /invalid callback name in \?(callback|jsonp)=/);
        assert.ok(!res.text.includes(name), `${door} does not echo ${JSON.stringify(name.slice(0, 40))}`);
      }
      for (const name of ['app.onMessage', '_cometd_jsonp_3']) {
        const res = await knock(port, name, t);
        assert.equal(res.status, 200, `${door}: ${name}`);
        assert.ok(res.text.includes(door === 'REST iframe' ? `parent.${name}(m)` : `/**/${name}(`), `${door} calls ${name}`);
      }
    }
  });
});
