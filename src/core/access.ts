/**
 * @module
 * Who may subscribe to and publish on which channel. A bearer is anonymous or a verified token
 * (a Principal); each channel falls under the first configured rule whose pattern covers it.
 * A token's own channel grants always count: the application that signed it decided.
 *
 * Subscriptions may be patterns, so "covers" is about sets of channels: `/a/**` covers `/a/*`,
 * `/a/b` and `/a/b/**`; `/a/*` covers `/a/b` and `/a/*` but not `/a/**`.
 */
import { parseChannel, SERVICE_PREFIX } from './channel.js';

export type Action = 'subscribe' | 'publish';

/** A verified token: who it names, until when, and what it grants. */
export interface Principal {
  readonly subject: string | undefined;
  /** Milliseconds since the epoch; undefined = never expires. */
  readonly expiresAt: number | undefined;
  readonly claims: Readonly<Record<string, unknown>>;
  /** Channel patterns the token itself grants. */
  readonly grants: { readonly subscribe: readonly string[]; readonly publish: readonly string[] };
}

export type TokenCheck = { ok: true; principal: Principal } | { ok: false; reason: 'invalid' | 'expired'; message: string };

/**
 * Who a rule lets through: `anyone` (anonymous too), `token` (any valid token), `grant` (only a
 * token whose own grants cover the channel), `nobody`, or a token carrying a claim (with a value).
 */
export type Audience = 'anyone' | 'token' | 'grant' | 'nobody' | { readonly claim: string; readonly equals?: unknown };

export interface ChannelRule {
  readonly pattern: string;
  readonly subscribe?: Audience;
  readonly publish?: Audience;
}

export interface Permissions {
  /** False: clients never publish on broadcast channels (only backends with the publish key). */
  readonly clientPublish?: boolean;
  /** First rule whose pattern covers the channel decides; a rule without the action falls through. */
  readonly channels?: readonly ChannelRule[];
}

export interface AccessPolicy {
  /** Verifies a token; never throws for a bad one. */
  verify(token: string): Promise<TokenCheck>;
  /** Whether `principal` (undefined: anonymous) may do `action` on `channel` (a name or, to subscribe, a pattern). */
  allows(principal: Principal | undefined, action: Action, channel: string): boolean;
  /** Whether any token key is configured: a token then has to prove itself, else none is expected. */
  readonly verifiesTokens: boolean;
}

/** A channel name or pattern, split once. */
interface Pattern {
  readonly segments: readonly string[];
  readonly deep: boolean;
}

function compile(name: string): Pattern | undefined {
  const parsed = parseChannel(name);
  return parsed === undefined ? undefined : { segments: name.split('/'), deep: parsed.wildcard === 'deep' };
}

/** Grants and rule patterns recur on every check: each is parsed once (bounded, for tokens' grants). */
const grantPatterns = new Map<string, Pattern | undefined>();

function grantPattern(grant: string): Pattern | undefined {
  if (grantPatterns.has(grant)) return grantPatterns.get(grant);
  if (grantPatterns.size >= 10_000) grantPatterns.clear();
  const pattern = compile(grant);
  grantPatterns.set(grant, pattern);
  return pattern;
}

/** Whether the set of channels `grant` matches includes every channel `channel` matches. */
export function covers(grant: string, channel: string): boolean {
  const target = compile(channel);
  return target !== undefined && patternCovers(grant, target);
}

function patternCovers(grant: string, target: Pattern): boolean {
  const pattern = grantPattern(grant);
  if (pattern === undefined) return false;
  const g = pattern.segments;
  const c = target.segments;
  if (pattern.deep) {
    // `/a/**`: every segment before `**` covered one for one, and at least one segment after them.
    if (c.length < g.length) return false;
    for (let i = 1; i < g.length - 1; i++) if (!segmentCovers(g[i]!, c[i]!)) return false;
    return true;
  }
  if (target.deep || c.length !== g.length) return false;
  for (let i = 1; i < g.length; i++) if (!segmentCovers(g[i]!, c[i]!)) return false;
  return true;
}

function segmentCovers(grant: string, segment: string): boolean {
  if (segment === '**') return false;
  return grant === '*' || grant === segment;
}

/** The audience that decides `action` on `channel`, or `fallback` when no rule speaks to it. */
function audienceFor(rules: readonly ChannelRule[], action: Action, channel: Pattern, fallback: Audience): Audience {
  for (const rule of rules) {
    const audience = rule[action];
    if (audience !== undefined && patternCovers(rule.pattern, channel)) return audience;
  }
  return fallback;
}

function admits(audience: Audience, principal: Principal | undefined, action: Action, channel: Pattern): boolean {
  if (audience === 'anyone') return true;
  if (principal === undefined || audience === 'nobody') return false;
  if (audience === 'token') return true;
  if (audience === 'grant') return granted(principal, action, channel);
  const value = principal.claims[audience.claim];
  if (value === undefined) return false;
  if (!('equals' in audience)) return true;
  return Array.isArray(value) ? value.some((v) => sameValue(v, audience.equals)) : sameValue(value, audience.equals);
}

function granted(principal: Principal, action: Action, channel: Pattern): boolean {
  return principal.grants[action].some((grant) => patternCovers(grant, channel));
}

function sameValue(a: unknown, b: unknown): boolean {
  return Array.isArray(b) ? b.some((option) => option === a) : a === b;
}

/** Reads a token's channel grant claim: one pattern, or a list of them; anything else grants nothing. */
export function readGrants(claim: unknown): string[] {
  const list = typeof claim === 'string' ? [claim] : Array.isArray(claim) ? claim : [];
  return list.filter((pattern): pattern is string => parseChannel(pattern) !== undefined).slice(0, 256);
}

/** Checks a permissions object from configuration, naming the first bad key. */
export function validatePermissions(value: unknown, where = 'permissions'): Permissions {
  if (!isRecord(value)) throw new TypeError(`${where} must be an object`);
  for (const key of Object.keys(value)) {
    if (key !== 'clientPublish' && key !== 'channels') throw new TypeError(`${where}.${key} is not a setting (use clientPublish, channels)`);
  }
  if (value.clientPublish !== undefined && typeof value.clientPublish !== 'boolean') throw new TypeError(`${where}.clientPublish must be true or false`);
  const channels = value.channels ?? [];
  if (!Array.isArray(channels)) throw new TypeError(`${where}.channels must be an array of rules`);
  channels.forEach((rule: unknown, i) => {
    const at = `${where}.channels[${i}]`;
    if (!isRecord(rule)) throw new TypeError(`${at} must be an object`);
    for (const key of Object.keys(rule)) {
      if (key !== 'pattern' && key !== 'subscribe' && key !== 'publish') throw new TypeError(`${at}.${key} is not a rule key (use pattern, subscribe, publish)`);
    }
    if (parseChannel(rule.pattern) === undefined) throw new TypeError(`${at}.pattern must be a channel or pattern such as /chat/**`);
    for (const action of ['subscribe', 'publish'] as const) {
      if (rule[action] !== undefined && !isAudience(rule[action])) {
        throw new TypeError(`${at}.${action} must be "anyone", "token", "grant", "nobody" or {"claim": name, "equals": value}`);
      }
    }
  });
  return value as Permissions;
}

function isAudience(value: unknown): value is Audience {
  if (value === 'anyone' || value === 'token' || value === 'grant' || value === 'nobody') return true;
  return isRecord(value) && typeof value.claim === 'string' && value.claim.length > 0 && Object.keys(value).every((key) => key === 'claim' || key === 'equals');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The policy Herald runs: token grants first, then the first rule that speaks to the channel.
 * Without rules, channels are open to anyone until token keys are configured, and then only to
 * the tokens that grant them — configuring a key closes the doors it is meant to guard.
 * `/service/**` channels stay open unless a rule says otherwise: their handlers see the subject.
 */
export class ChannelAccess implements AccessPolicy {
  readonly #rules: readonly ChannelRule[];
  readonly #clientPublish: boolean;
  readonly #fallback: Audience;

  constructor(
    readonly verify: (token: string) => Promise<TokenCheck>,
    readonly verifiesTokens: boolean,
    permissions: Permissions = {},
  ) {
    this.#rules = permissions.channels ?? [];
    this.#clientPublish = permissions.clientPublish ?? true;
    this.#fallback = verifiesTokens ? 'grant' : 'anyone';
  }

  allows(principal: Principal | undefined, action: Action, channel: string): boolean {
    const service = channel.startsWith(SERVICE_PREFIX);
    if (action === 'publish' && !service && !this.#clientPublish) return false;
    const fallback = service ? 'anyone' : this.#fallback;
    // Open by default and no rules: nothing to parse (the common case, on every publish).
    if (fallback === 'anyone' && this.#rules.length === 0) return true;
    const target = compile(channel);
    if (target === undefined) return false;
    if (principal !== undefined && granted(principal, action, target)) return true;
    return admits(audienceFor(this.#rules, action, target, fallback), principal, action, target);
  }
}

/** Everyone may do everything; no token is accepted (nothing could verify one). */
export const OPEN_ACCESS: AccessPolicy = new ChannelAccess(async () => ({ ok: false, reason: 'invalid', message: 'tokens are not accepted here' }), false);
