/**
 * @module
 * JSON Web Tokens (npm `jose`): verifying what clients present, and signing the short-lived,
 * channel-bound tokens `POST /sign` hands to backends. Accepted: HS256 with a shared secret,
 * RS256/ES256 with a public key or a JWKS file — each algorithm only when its key is configured,
 * so a token can never choose how it is checked (no `none`, no HS256 signed with a public key).
 *
 * Claims read: `sub`, `exp`, and the channel patterns the bearer may `subscribe` to and `publish`
 * on (a string or a list). Signatures are compared by WebCrypto, in constant time.
 */
import { createHmac, createPublicKey, createSecretKey, randomBytes } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import { createLocalJWKSet, errors, jwtVerify, SignJWT } from 'jose';
import type { FlattenedJWSInput, JSONWebKeySet, JWTHeaderParameters, JWTPayload } from 'jose';
import type { Principal, TokenCheck } from '../core/access.js';
import { readGrants } from '../core/access.js';
import { HeraldError } from '../core/errors.js';

export interface TokenKeys {
  /** HS256 shared secret (at least 32 characters). */
  readonly jwtSecret?: string | undefined;
  /** PEM (SPKI) public key for RS256 or ES256 tokens. */
  readonly jwtPublicKey?: string | undefined;
  /** A JSON Web Key Set for RS256/ES256 tokens, picked by `kid`. */
  readonly jwks?: JSONWebKeySet | undefined;
  /** When set, tokens must name this issuer (`iss`) / audience (`aud`). */
  readonly issuer?: string | undefined;
  readonly audience?: string | undefined;
  /** Signs `/sign` tokens; derive it from the publish key so every node of a cluster agrees. */
  readonly signingSecret: Uint8Array;
}

/** The `kid` of tokens Herald signs itself, so they are checked with the signing key and nothing else. */
const SIGNED_KID = 'herald-sign';
const SIGNED_ISSUER = 'herald';
/** Seconds of clock difference forgiven between the token's signer and this node. */
const CLOCK_TOLERANCE_S = 5;

export class Tokens {
  readonly #secret: KeyObject | undefined;
  readonly #publicKey: { key: KeyObject; alg: 'RS256' | 'ES256' } | undefined;
  readonly #jwks: ReturnType<typeof createLocalJWKSet> | undefined;
  readonly #signing: KeyObject;
  readonly #algorithms: string[];

  constructor(private readonly keys: TokenKeys) {
    if (keys.jwtSecret !== undefined && keys.jwtSecret.length < 32) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', 'jwtSecret must be at least 32 characters (HS256 needs 256 bits)');
    }
    this.#secret = keys.jwtSecret === undefined ? undefined : createSecretKey(Buffer.from(keys.jwtSecret, 'utf8'));
    this.#publicKey = keys.jwtPublicKey === undefined ? undefined : readPublicKey(keys.jwtPublicKey);
    this.#jwks = keys.jwks === undefined ? undefined : createLocalJWKSet(readJwks(keys.jwks));
    this.#signing = createSecretKey(Buffer.from(keys.signingSecret));
    const algorithms = new Set(['HS256']);
    if (this.#publicKey !== undefined) algorithms.add(this.#publicKey.alg);
    if (this.#jwks !== undefined) ['RS256', 'ES256'].forEach((alg) => algorithms.add(alg));
    this.#algorithms = [...algorithms];
  }

  /** Whether an application key (secret, public key or JWKS) is configured, beyond Herald's own signing key. */
  get verifiesApplicationTokens(): boolean {
    return this.#secret !== undefined || this.#publicKey !== undefined || this.#jwks !== undefined;
  }

  async verify(token: string): Promise<TokenCheck> {
    if (token.length > 8192) return { ok: false, reason: 'invalid', message: 'token too long' };
    try {
      const { payload, protectedHeader } = await jwtVerify(token, (header, input) => this.#keyFor(header, input), {
        algorithms: this.#algorithms,
        clockTolerance: CLOCK_TOLERANCE_S,
      });
      if (protectedHeader.kid !== SIGNED_KID) this.#checkApplicationClaims(payload);
      return { ok: true, principal: principalOf(payload) };
    } catch (error) {
      if (error instanceof errors.JWTExpired) return { ok: false, reason: 'expired', message: 'token expired' };
      if (error instanceof errors.JOSEError || error instanceof ClaimError) return { ok: false, reason: 'invalid', message: `invalid token: ${describe(error)}` };
      throw error;
    }
  }

  /** A token for one channel, valid `ttlMs` from now (`POST /sign`). */
  async sign(grant: { channel: string; ttlMs: number; publish: boolean; subject?: string | undefined }): Promise<{ token: string; expiresAt: number }> {
    const expiresAt = Math.floor((Date.now() + grant.ttlMs) / 1000);
    const claims: JWTPayload = { subscribe: [grant.channel] };
    if (grant.publish) claims.publish = [grant.channel];
    const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: SIGNED_KID }).setIssuer(SIGNED_ISSUER).setIssuedAt().setExpirationTime(expiresAt);
    if (grant.subject !== undefined) jwt.setSubject(grant.subject);
    return { token: await jwt.sign(this.#signing), expiresAt: expiresAt * 1000 };
  }

  #keyFor(header: JWTHeaderParameters, input: FlattenedJWSInput): KeyObject | ReturnType<ReturnType<typeof createLocalJWKSet>> {
    if (header.kid === SIGNED_KID) {
      if (header.alg !== 'HS256') throw new ClaimError('unexpected algorithm');
      return this.#signing;
    }
    if (header.alg === 'HS256') {
      if (this.#secret === undefined) throw new ClaimError('HS256 tokens are not accepted here');
      return this.#secret;
    }
    if (this.#publicKey !== undefined && header.alg === this.#publicKey.alg && (this.#jwks === undefined || header.kid === undefined)) return this.#publicKey.key;
    if (this.#jwks !== undefined) return this.#jwks(header, input);
    throw new ClaimError(`${String(header.alg)} tokens are not accepted here`);
  }

  #checkApplicationClaims(payload: JWTPayload): void {
    if (this.keys.issuer !== undefined && payload.iss !== this.keys.issuer) throw new ClaimError('unexpected issuer');
    if (this.keys.audience !== undefined) {
      const audience = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
      if (!audience.includes(this.keys.audience)) throw new ClaimError('unexpected audience');
    }
  }
}

class ClaimError extends Error {}

function describe(error: unknown): string {
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature does not verify';
  return error instanceof Error ? error.message.slice(0, 200) : 'unreadable';
}

function principalOf(payload: JWTPayload): Principal {
  return {
    subject: typeof payload.sub === 'string' ? payload.sub : undefined,
    expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
    claims: payload,
    grants: { subscribe: readGrants(payload.subscribe), publish: readGrants(payload.publish) },
  };
}

/** A PEM public key Herald can check tokens with (RSA or P-256), or a HeraldError saying why not. */
export function readPublicKey(pem: string): { key: KeyObject; alg: 'RS256' | 'ES256' } {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `jwtPublicKey is not a PEM public key: ${(error as Error).message}`, { cause: error });
  }
  return { key, alg: algorithmOf(key, 'jwtPublicKey') };
}

/** RS256 or ES256 for a key Herald can check tokens with, or a HeraldError naming `name`. */
function algorithmOf(key: KeyObject, name: string): 'RS256' | 'ES256' {
  if (key.asymmetricKeyType === 'rsa') {
    // jose refuses RS256 with a shorter key: every token would fail, so say it at start.
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${name} is an RSA key of ${bits} bits: RS256 needs at least 2048`);
    return 'RS256';
  }
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${name} must be an RSA (RS256) or P-256 (ES256) key, got ${String(key.asymmetricKeyType)} ${String(key.asymmetricKeyDetails?.namedCurve ?? '')}`.trim());
}

/**
 * A JSON Web Key Set (its JSON text, or the set) holding at least one key and only keys Herald
 * can check tokens with (RSA, or EC P-256), or a HeraldError naming the key at fault: a set with
 * none would close every channel to every token without a word at start.
 */
export function readJwks(set: unknown): JSONWebKeySet {
  let value = set;
  if (typeof set === 'string') {
    try {
      value = JSON.parse(set);
    } catch {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', 'jwks is not valid JSON');
    }
  }
  const keys: unknown = typeof value === 'object' && value !== null ? (value as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(keys)) throw new HeraldError('HERALD_ERR_INVALID_OPTION', 'jwks must be {"keys": [...]}');
  if (keys.length === 0) throw new HeraldError('HERALD_ERR_INVALID_OPTION', 'jwks holds no keys: every token would be refused');
  keys.forEach((jwk: unknown, index) => {
    const name = `jwks key ${index + 1}${typeof (jwk as { kid?: unknown })?.kid === 'string' ? ` (kid ${JSON.stringify((jwk as { kid: string }).kid.slice(0, 100))})` : ''}`;
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch (error) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${name} is not an RSA or EC public key: ${(error as Error).message.slice(0, 200)}`, { cause: error });
    }
    algorithmOf(key, name);
  });
  return value as JSONWebKeySet;
}

/**
 * The key `/sign` tokens are signed with: derived from the publish key, so every node sharing that
 * key accepts the others' tokens; random (valid in this process only) without one.
 */
export function signingSecretFrom(publishKey: string | undefined): Uint8Array {
  if (publishKey === undefined) return randomBytes(32);
  return createHmac('sha256', publishKey).update('herald /sign tokens').digest();
}
