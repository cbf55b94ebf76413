/**
 * The control plane's stores under an operator's flood, on one node: 100,000 revocations (a
 * script revoking every token after a leak; a node reading them back from Redis does the same
 * adds) must take seconds, not minutes — each add once walked every record to forget expired
 * ones — and every token use is still judged right among them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { systemClock } from '../../src/core/clock.js';
import type { Clock } from '../../src/core/clock.js';
import { startHerald } from '../helpers/herald.js';
import { RawBayeux } from '../helpers/raw-bayeux.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const nowS = () => Math.floor(Date.now() / 1000);

function token(sub: string, claims: Record<string, unknown> = {}, issuedAt = nowS() - 10): Promise<string> {
  return new SignJWT({ subscribe: ['/**'], ...claims }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(issuedAt).setExpirationTime('1h').sign(Buffer.from(SECRET));
}

async function handshake(port: number, jwt: string): Promise<any> {
  return new RawBayeux(port).handshake({ ext: { auth: { token: jwt } } });
}

describe('revocations in bulk', () => {
  test('100,000 revocations are recorded in seconds, and tokens are judged right among them', async (t) => {
    const { port, herald } = await startHerald(t, { jwtSecret: SECRET });
    const until = nowS() + 3600;
    const count = 100_000;
    // Before: about a minute of blocked event loop (10^10 steps); after, well under a second or two.
    const deadline = performance.now() + 15_000;
    for (let i = 0; i < count; i++) {
      await herald.revoke({ jti: `leaked-${i}`, until });
      if (i % 1000 === 999) assert.ok(performance.now() < deadline, `only ${i + 1} of ${count} revocations within 15 s`);
    }
    await herald.revoke({ sub: 'mallory', until });
    assert.equal((await handshake(port, await token('alice', { jti: 'leaked-0' }))).error, '403:token_revoked:handshake_denied');
    assert.equal((await handshake(port, await token('alice', { jti: `leaked-${count - 1}` }))).error, '403:token_revoked:handshake_denied');
    assert.equal((await handshake(port, await token('mallory'))).error, '403:token_revoked:handshake_denied');
    assert.equal((await handshake(port, await token('alice', { jti: 'not-leaked' }))).successful, true);
  });

  test('a subject revoked again after its first revocation expired is revoked only from the new "before"', async (t) => {
    // Expired records may linger until the store is swept: they must neither count nor widen a new one.
    let offsetMs = 0;
    const clock: Clock = { ...systemClock, now: () => Date.now() + offsetMs };
    const { port, herald } = await startHerald(t, { jwtSecret: SECRET, clock });
    const issued = nowS() - 10;
    await herald.revoke({ sub: 'ann', before: issued + 100, until: issued + 200 });
    assert.equal((await handshake(port, await token('ann', {}, issued))).error, '403:token_revoked:handshake_denied');
    offsetMs = 300_000;
    assert.equal((await handshake(port, await token('ann', {}, issued))).successful, true, 'the first revocation is over');
    await herald.revoke({ sub: 'ann', before: issued - 1000, until: new Date(Date.now() + offsetMs + 3600_000) });
    assert.equal((await handshake(port, await token('ann', {}, issued))).successful, true, 'issued after the new "before"');
    assert.equal((await handshake(port, await token('ann', {}, issued - 2000))).error, '403:token_revoked:handshake_denied');
  });
});
