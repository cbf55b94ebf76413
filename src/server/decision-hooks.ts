/**
 * @module
 * Backend decision hooks over HTTP (`--connect-hook`, `--subscribe-hook`, `--publish-hook`):
 * Herald POSTs the request's context as JSON and the backend answers
 *
 *   {"allow": true, "sub"?: "42", "info"?: any, "channels"?: ["/user/42"], "data"?: any, "cacheSeconds"?: 30}
 *   {"allow": false, "reason": "not a member", "cacheSeconds"?: 30}
 *
 * Anything else fails closed: no answer within `--hook-timeout`, a connection refused, a status
 * other than 2xx, a body that is not such JSON or is larger than 64 KiB, more calls waiting than
 * `--hook-concurrency` allows (one client address may hold at most a quarter of those in flight
and waiting). The backend proves who calls it by `Authorization: Bearer
 * <--hook-secret>` (never logged). Decisions the backend marks cacheable are kept for that long
 * (at most MAX_CACHE_SECONDS), keyed on the hook, credentials, subject and channel, in a bounded
 * map; a publish decision that replaces the data is never kept (it answers one message).
 */
import { createHash } from 'node:crypto';
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import { addressGroup } from '../core/address-group.js';
import { parseChannel } from '../core/channel.js';
import type { DecisionHooks, HookDecision, HookKind, HookRequest } from '../core/hooks.js';
import { redactUrl } from '../core/redact.js';
import type { Logger } from './logger.js';

export interface HookSettings {
  readonly connectHook?: string | undefined;
  readonly subscribeHook?: string | undefined;
  readonly publishHook?: string | undefined;
  readonly hookSecret?: string | undefined;
  readonly hookTimeoutMs: number;
  readonly hookConcurrency: number;
}

/** The longest a backend may have a decision kept. */
export const MAX_CACHE_SECONDS = 600;
/** Decisions kept at most (the oldest go first). */
export const MAX_CACHE_ENTRIES = 10_000;
/** The largest answer read; a longer one fails closed. */
export const MAX_ANSWER_BYTES = 64 * 1024;
/** Channels a connect hook may have a session join. */
export const MAX_HOOK_CHANNELS = 32;

type Outcome = 'allow' | 'deny' | 'timeout' | 'error' | 'invalid' | 'busy';

/** A failure to get a decision: what the client and the metrics are told. */
class HookFailure extends Error {
  constructor(
    readonly outcome: Exclude<Outcome, 'allow' | 'deny'>,
    message: string,
  ) {
    super(message);
  }
}

/** The hooks configured, or undefined when none is. */
export function createDecisionHooks(settings: HookSettings, registry: Registry, logger: Logger): HttpDecisionHooks | undefined {
  const urls: Partial<Record<HookKind, string>> = {};
  if (settings.connectHook !== undefined) urls.connect = settings.connectHook;
  if (settings.subscribeHook !== undefined) urls.subscribe = settings.subscribeHook;
  if (settings.publishHook !== undefined) urls.publish = settings.publishHook;
  return Object.keys(urls).length === 0 ? undefined : new HttpDecisionHooks(urls, settings, registry, logger);
}

export class HttpDecisionHooks implements DecisionHooks {
  readonly #cache = new Map<string, { decision: HookDecision; until: number }>();
  readonly #waiting: { grant: () => void }[] = [];
  #active = 0;
  /** Calls in flight or waiting, by client address (see #slot). */
  readonly #byAddress = new Map<string, number>();
  readonly #calls: Counter;
  readonly #seconds: Histogram;
  readonly #cacheHits: Counter;

  constructor(
    private readonly urls: Partial<Record<HookKind, string>>,
    private readonly settings: HookSettings,
    registry: Registry,
    private readonly logger: Logger,
  ) {
    const registers = [registry];
    this.#calls = new Counter({ name: 'herald_hook_calls_total', help: 'Calls to the decision hooks, by hook and outcome (allow, deny, timeout, error, invalid, busy).', labelNames: ['hook', 'outcome'], registers });
    this.#seconds = new Histogram({ name: 'herald_hook_seconds', help: 'How long the decision hooks took to answer (or to fail), by hook.', labelNames: ['hook'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    this.#cacheHits = new Counter({ name: 'herald_hook_cache_hits_total', help: 'Decisions served from the hook cache, by hook.', labelNames: ['hook'], registers });
  }

  has(kind: HookKind): boolean {
    return this.urls[kind] !== undefined;
  }

  async ask(kind: HookKind, request: HookRequest): Promise<HookDecision> {
    const url = this.urls[kind];
    if (url === undefined) return { allow: false, reason: `no ${kind} hook is configured`, unavailable: true };
    let body: string;
    let key: string;
    try {
      body = JSON.stringify({ hook: kind, ...request });
      key = cacheKey(kind, request);
    } catch {
      // What the client sent cannot be written down (nested too deeply): asking again will not help.
      this.#calls.inc({ hook: kind, outcome: 'invalid' });
      return { allow: false, reason: `what the client sent cannot be passed to the ${kind} hook (nested too deeply)`, unavailable: false };
    }
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      if (cached.until > Date.now()) {
        this.#cacheHits.inc({ hook: kind });
        return cached.decision;
      }
      this.#cache.delete(key);
    }
    const started = performance.now();
    let outcome: Outcome;
    let decision: HookDecision;
    try {
      const { decision: answered, cacheSeconds } = readAnswer(kind, await this.#call(url, kind, body, request.address));
      decision = answered;
      outcome = decision.allow ? 'allow' : 'deny';
      if (cacheSeconds > 0 && !(decision.allow && decision.replace !== undefined)) this.#keep(key, decision, cacheSeconds);
    } catch (error) {
      const failure = error instanceof HookFailure ? error : new HookFailure('error', describe(error));
      outcome = failure.outcome;
      this.logger.warn('hook failed', { hook: kind, url: redactUrl(url), outcome, error: failure.message });
      decision = { allow: false, reason: failure.message, unavailable: true };
    }
    this.#calls.inc({ hook: kind, outcome });
    this.#seconds.observe({ hook: kind }, (performance.now() - started) / 1000);
    return decision;
  }

  /** One POST, within the timeout (waiting for a slot included); the parsed JSON answer. */
  async #call(url: string, kind: HookKind, body: string, address: string | undefined): Promise<unknown> {
    const timeoutMs = this.settings.hookTimeoutMs;
    const signal = AbortSignal.timeout(timeoutMs);
    const timedOut = () => new HookFailure('timeout', `the ${kind} hook did not answer within ${timeoutMs} ms`);
    this.#enter(kind, address);
    try {
      await this.#slot(kind, signal, timedOut);
    } catch (error) {
      this.#leave(address);
      throw error;
    }
    try {
      const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json', 'User-Agent': 'herald' };
      if (this.settings.hookSecret !== undefined) headers.Authorization = `Bearer ${this.settings.hookSecret}`;
      let response: Response;
      try {
        // A redirect is refused: the secret and the client's credentials go only where configured.
        response = await fetch(url, { method: 'POST', headers, body, signal, redirect: 'error' });
      } catch (error) {
        throw signal.aborted ? timedOut() : new HookFailure('error', `the ${kind} hook could not be reached (${describe(error)})`);
      }
      if (response.status < 200 || response.status > 299) {
        await response.body?.cancel().catch(() => undefined);
        throw new HookFailure('error', `the ${kind} hook answered HTTP ${response.status}`);
      }
      let text: string;
      try {
        text = await readBounded(response, kind);
      } catch (error) {
        if (error instanceof HookFailure) throw error;
        throw signal.aborted ? timedOut() : new HookFailure('error', `the ${kind} hook's answer broke off (${describe(error)})`);
      }
      try {
        return JSON.parse(text);
      } catch {
        throw new HookFailure('invalid', `the ${kind} hook's answer is not JSON`);
      }
    } finally {
      this.#release();
      this.#leave(address);
    }
  }

  /**
   * Counts a call against its client's address: one address may have at most a quarter of the
   * calls in flight and waiting. Handshakes are not rate-limited before a session exists, so
   * without this one client flooding them (each with credentials of its own, past the cache)
   * held every slot, and every other client was refused.
   */
  #enter(kind: HookKind, address: string | undefined): void {
    const group = addressGroup(address);
    if (group === undefined) return;
    const share = Math.ceil(this.settings.hookConcurrency / 2);
    const held = this.#byAddress.get(group) ?? 0;
    if (held >= share) throw new HookFailure('busy', `too many ${kind} hook calls from ${group} at once (at most ${share} of one address)`);
    this.#byAddress.set(group, held + 1);
  }

  #leave(address: string | undefined): void {
    const group = addressGroup(address);
    if (group === undefined) return;
    const held = this.#byAddress.get(group)! - 1;
    if (held === 0) this.#byAddress.delete(group);
    else this.#byAddress.set(group, held);
  }

  /**
   * Waits for one of `--hook-concurrency` slots; as many more calls may wait, within their
   * timeout. Beyond that the call fails at once: a slow backend must not gather unbounded work.
   */
  async #slot(kind: HookKind, signal: AbortSignal, timedOut: () => HookFailure): Promise<void> {
    const max = this.settings.hookConcurrency;
    if (this.#active < max) {
      this.#active++;
      return;
    }
    if (this.#waiting.length >= max) throw new HookFailure('busy', `too many ${kind} hook calls at once (at most ${max}, and ${max} waiting)`);
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal.removeEventListener('abort', abandon);
          resolve();
        },
      };
      const abandon = () => {
        this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
        reject(timedOut());
      };
      signal.addEventListener('abort', abandon, { once: true });
      this.#waiting.push(waiter);
    });
  }

  /** Hands the slot to the next waiter, if any. */
  #release(): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next.grant();
    else this.#active--;
  }

  #keep(key: string, decision: HookDecision, cacheSeconds: number): void {
    if (this.#cache.size >= MAX_CACHE_ENTRIES) {
      // Insertion order: the first key is the oldest decision.
      this.#cache.delete(this.#cache.keys().next().value!);
    }
    this.#cache.set(key, { decision, until: Date.now() + Math.min(cacheSeconds, MAX_CACHE_SECONDS) * 1000 });
  }
}

/** The credentials, subject and channel a decision rests on, hashed: keys stay small, and hold no secret in clear. */
function cacheKey(kind: HookKind, request: HookRequest): string {
  return createHash('sha256').update(JSON.stringify([kind, request.credentials, request.sub ?? null, request.channel ?? null])).digest('base64');
}

async function readBounded(response: Response, kind: HookKind): Promise<string> {
  const tooLarge = () => new HookFailure('invalid', `the ${kind} hook's answer is larger than ${MAX_ANSWER_BYTES} bytes`);
  const declared = Number(response.headers.get('content-length'));
  if (declared > MAX_ANSWER_BYTES) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The answer as a decision, or a failure naming the first thing wrong with it. */
function readAnswer(kind: HookKind, answer: unknown): { decision: HookDecision; cacheSeconds: number } {
  const wrong = (what: string) => new HookFailure('invalid', `the ${kind} hook's answer is wrong: ${what}`);
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) throw wrong('not a JSON object');
  const fields = answer as Record<string, unknown>;
  const { allow, cacheSeconds = 0 } = fields;
  if (typeof allow !== 'boolean') throw wrong('"allow" must be true or false');
  if (typeof cacheSeconds !== 'number' || !Number.isFinite(cacheSeconds) || cacheSeconds < 0) throw wrong('"cacheSeconds" must be a number of seconds ≥ 0');
  if (!allow) {
    const { reason = 'denied' } = fields;
    if (typeof reason !== 'string') throw wrong('"reason" must be a string');
    return { decision: { allow: false, reason: reason.slice(0, 200) || 'denied', unavailable: false }, cacheSeconds };
  }
  const { sub, info, channels, data } = fields;
  if (sub !== undefined && (typeof sub !== 'string' || sub === '' || sub.length > 256)) throw wrong('"sub" must be a string of 1 to 256 characters');
  const decision: { allow: true; sub?: string; info?: unknown; channels?: string[]; replace?: { data: unknown } } = { allow: true };
  if (sub !== undefined) decision.sub = sub;
  if (info !== undefined) decision.info = info;
  if (channels !== undefined) {
    if (kind !== 'connect') throw wrong('"channels" is for the connect hook only');
    const valid = Array.isArray(channels) && channels.length <= MAX_HOOK_CHANNELS && channels.every((c) => typeof c === 'string' && parseChannel(c)?.kind === 'broadcast');
    if (!valid) throw wrong(`"channels" must be an array of at most ${MAX_HOOK_CHANNELS} channels or patterns (not /meta/ or /service/)`);
    decision.channels = channels as string[];
  }
  if ('data' in fields) {
    if (kind !== 'publish') throw wrong('"data" is for the publish hook only');
    decision.replace = { data };
  }
  return { decision, cacheSeconds };
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  return error instanceof Error ? error.message : String(error);
}
