/**
 * @module
 * Who may subscribe to and publish on which channel. A bearer is anonymous or a verified token
 * (a Principal); each channel falls under the first configured rule whose pattern covers it.
 * A token's own channel grants always count: the application that signed it decided.
 *
 * Subscriptions may be patterns, so "covers" is about sets of channels: `/a/**` covers `/a/*`,
 * `/a/b` and `/a/b/**`; `/a/*` covers `/a/b` and `/a/*` but not `/a/**`. A pattern may reach
 * only some of its channels: a subscription to it then gets a guard that checks each delivery
 * by the channel's own name (subscription-guard.ts).
 */
import { parseChannel, SERVICE_PREFIX } from './channel.js';
import { channelSet, includes, intersection } from './channel-set.js';
import type { ChannelSet } from './channel-set.js';

export type Action = 'subscribe' | 'publish';

/** How many channels of a pattern a bearer may reach: every one, only some, or none. */
export type Reach = 'all' | 'some' | 'none';

/** A verified token: who it names, until when, and what it grants. */
export interface Principal {
  readonly subject: string | undefined;
  /** Milliseconds since the epoch; undefined = never expires. */
  readonly expiresAt: number | undefined;
  readonly claims: Readonly<Record<string, unknown>>;
  /** Channel patterns the token itself grants. */
  readonly grants: { readonly subscribe: readonly string[]; readonly publish: readonly string[] };
}

/** `revoked`: a valid token the control plane revoked (control-plane.ts). */
export type TokenCheck = { ok: true; principal: Principal } | { ok: false; reason: 'invalid' | 'expired' | 'revoked'; message: string };

/**
 * Who a rule lets through: `anyone` (anonymous too), `token` (any valid token), `grant` (only a
 * token whose own grants cover the channel), `nobody`, a token carrying a claim (with a value),
 * or whoever the application's backend lets through when asked (`hook`: core/hooks.ts). The rules
 * alone never admit by `hook`: the door asks the backend where `hooked` says the rules leave it.
 */
export type Audience = 'anyone' | 'token' | 'grant' | 'nobody' | 'hook' | { readonly claim: string; readonly equals?: unknown };

export interface ChannelRule {
  readonly pattern: string;
  readonly subscribe?: Audience;
  readonly publish?: Audience;
  /** `events`: subscribers of the channels it covers are told who joins and leaves (presence-events.ts); `off`: not. */
  readonly presence?: 'events' | 'off';
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
  /**
   * Whether `principal` (undefined: anonymous) may do `action` on `channel`: a name, or a pattern
   * every channel of which it may reach.
   */
  allows(principal: Principal | undefined, action: Action, channel: string): boolean;
  /** How many of the channels `channel` (a name or a pattern) matches `principal` may do `action` on. */
  reach(principal: Principal | undefined, action: Action, channel: string): Reach;
  /** Whether any token key is configured: a token then has to prove itself, else none is expected. */
  readonly verifiesTokens: boolean;
  /**
   * Whether every channel `channel` (a name or a pattern) matches falls to a `hook` rule for
   * `action`: the backend's hook then decides what the rules (and grants) do not already allow.
   */
  hooked(action: Action, channel: string): boolean;
}

/** Grants recur on every check: each is parsed once (bounded: tokens bring their own). */
const grantSets = new Map<string, ChannelSet | undefined>();

function grantSet(grant: string): ChannelSet | undefined {
  if (grantSets.has(grant)) return grantSets.get(grant);
  if (grantSets.size >= 10_000) grantSets.clear();
  const set = channelSet(grant);
  grantSets.set(grant, set);
  return set;
}

/** Whether the set of channels `grant` matches includes every channel `channel` matches. */
export function covers(grant: string, channel: string): boolean {
  const outer = grantSet(grant);
  const inner = channelSet(channel);
  return outer !== undefined && inner !== undefined && includes(outer, inner);
}

/** How much of a set a principal's grants reach. */
function grantReach(grants: readonly string[], target: ChannelSet): Reach {
  let reach: Reach = 'none';
  for (const grant of grants) {
    const set = grantSet(grant);
    if (set === undefined) continue;
    if (includes(set, target)) return 'all';
    if (intersection(set, target) !== undefined) reach = 'some';
  }
  return reach;
}

/** How much of `region` an audience lets `principal` reach (`grant`: as far as its grants do). */
function admission(audience: Audience, principal: Principal | undefined, action: Action, region: ChannelSet): Reach {
  if (audience === 'anyone') return 'all';
  if (principal === undefined || audience === 'nobody' || audience === 'hook') return 'none';
  if (audience === 'token') return 'all';
  if (audience === 'grant') return grantReach(principal.grants[action], region);
  const value = principal.claims[audience.claim];
  if (value === undefined) return 'none';
  if (!('equals' in audience)) return 'all';
  const held = Array.isArray(value) ? value.some((v) => sameValue(v, audience.equals)) : sameValue(value, audience.equals);
  return held ? 'all' : 'none';
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
      if (key !== 'pattern' && key !== 'subscribe' && key !== 'publish' && key !== 'presence') throw new TypeError(`${at}.${key} is not a rule key (use pattern, subscribe, publish, presence)`);
    }
    if (rule.presence !== undefined && rule.presence !== 'events' && rule.presence !== 'off') throw new TypeError(`${at}.presence must be "events" or "off"`);
    if (parseChannel(rule.pattern) === undefined) throw new TypeError(`${at}.pattern must be a channel or pattern such as /chat/**`);
    for (const action of ['subscribe', 'publish'] as const) {
      if (rule[action] !== undefined && !isAudience(rule[action])) {
        throw new TypeError(`${at}.${action} must be "anyone", "token", "grant", "nobody", "hook" or {"claim": name, "equals": value}`);
      }
    }
  });
  return value as Permissions;
}

function isAudience(value: unknown): value is Audience {
  if (value === 'anyone' || value === 'token' || value === 'grant' || value === 'nobody' || value === 'hook') return true;
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
 *
 * A pattern is judged channel by channel, never by the first rule that covers it whole: in
 * `/chat/**` beside a rule closing `/chat/private/**`, some channels are open and some are not.
 * The rules are walked in order; the part of the pattern a rule decides is what it shares with the
 * pattern less what earlier rules took, which is empty exactly when one earlier rule covers that
 * part alone (channel-set.ts). What the rules leave falls to the default.
 */
export class ChannelAccess implements AccessPolicy {
  readonly #rules: readonly { readonly set: ChannelSet; readonly rule: ChannelRule }[];
  readonly #clientPublish: boolean;
  readonly #fallback: Audience;

  constructor(
    readonly verify: (token: string) => Promise<TokenCheck>,
    readonly verifiesTokens: boolean,
    permissions: Permissions = {},
  ) {
    this.#rules = (permissions.channels ?? []).flatMap((rule) => {
      const set = channelSet(rule.pattern);
      return set === undefined ? [] : [{ set, rule }];
    });
    this.#clientPublish = permissions.clientPublish ?? true;
    this.#fallback = verifiesTokens ? 'grant' : 'anyone';
  }

  allows(principal: Principal | undefined, action: Action, channel: string): boolean {
    return this.reach(principal, action, channel) === 'all';
  }

  reach(principal: Principal | undefined, action: Action, channel: string): Reach {
    const service = channel.startsWith(SERVICE_PREFIX);
    if (action === 'publish' && !service && !this.#clientPublish) return 'none';
    const fallback = service ? 'anyone' : this.#fallback;
    // Open by default and no rules: nothing to parse (the common case, on every publish).
    if (fallback === 'anyone' && this.#rules.length === 0) return 'all';
    const target = channelSet(channel);
    if (target === undefined) return 'none';
    // A token's own grants always count, whatever the rules say.
    const granted = principal === undefined ? 'none' : grantReach(principal.grants[action], target);
    if (granted === 'all') return 'all';
    const grantCovers = (region: ChannelSet) => granted !== 'none' && grantReach(principal!.grants[action], region) === 'all';
    let some = granted === 'some';
    let all = true;
    const earlier: ChannelSet[] = [];
    let decided = false;
    for (const { set, rule } of this.#rules) {
      const audience = rule[action];
      if (audience === undefined) continue;
      const shared = intersection(set, target);
      if (shared === undefined) continue;
      if (!earlier.some((taken) => includes(taken, shared))) {
        const admitted = admission(audience, principal, action, shared);
        if (admitted !== 'none') some = true;
        if (admitted !== 'all' && !grantCovers(shared)) all = false;
      }
      if (includes(set, target)) {
        decided = true;
        break;
      }
      earlier.push(set);
    }
    if (!decided) {
      const admitted = admission(fallback, principal, action, target);
      if (admitted !== 'none') some = true;
      if (admitted !== 'all') all = false;
    }
    return all ? 'all' : some ? 'some' : 'none';
  }

  /** Whether `channel` (a name, not a pattern) has join/leave events: the first rule covering it that says. */
  presenceEvents(channel: string): boolean {
    const target = channelSet(channel);
    if (target === undefined || channel.includes('*')) return false;
    for (const { set, rule } of this.#rules) {
      if (rule.presence !== undefined && includes(set, target)) return rule.presence === 'events';
    }
    return false;
  }

  /** Whether any rule turns join/leave events on (else no channel needs following). */
  get hasPresenceEvents(): boolean {
    return this.#rules.some(({ rule }) => rule.presence === 'events');
  }

  hooked(action: Action, channel: string): boolean {
    if (action === 'publish' && !channel.startsWith(SERVICE_PREFIX) && !this.#clientPublish) return false;
    const target = channelSet(channel);
    if (target === undefined) return false;
    // The same walk as reach(): every part of the target some rule decides must be a hook's, and
    // some rule must decide the rest (the default is never a hook).
    const earlier: ChannelSet[] = [];
    for (const { set, rule } of this.#rules) {
      const audience = rule[action];
      if (audience === undefined) continue;
      const shared = intersection(set, target);
      if (shared === undefined) continue;
      if (!earlier.some((taken) => includes(taken, shared)) && audience !== 'hook') return false;
      if (includes(set, target)) return true;
      earlier.push(set);
    }
    return false;
  }
}

/** Everyone may do everything; no token is accepted (nothing could verify one). */
export const OPEN_ACCESS: AccessPolicy = new ChannelAccess(async () => ({ ok: false, reason: 'invalid', message: 'tokens are not accepted here' }), false);
