/**
 * @module
 * The control plane across the cluster. A command is appended to a log (`<prefix>control:log`, a
 * stream that keeps CONTROL_LOG_MS of them) and published on `<prefix>control` in one step
 * (CONTROL_SCRIPT), stamped with its sender so that a node does not act twice on its own. Nodes
 * hear it on pub/sub; a node whose pub/sub connection was cut (a network blip, Redis restarting
 * or paused) reads the log from the last id it heard once it is back, and hands over what it
 * missed with how long ago each was sent — so a kick or a server (un)subscription sent meanwhile
 * is not lost for it. A node away longer than the log keeps says so in its log.
 *
 * Kept longer, as keys that expire: revocations, one hash per token or subject
 * (`<prefix>revoked:jti:<jti>`, `<prefix>revoked:sub:<sub>`, fields `before` and `until` in ms)
 * until their `until`, read back whenever the pub/sub connection is (re)made; and unsubscribes
 * (`<prefix>withdrawn:u|s:<user or session>:<channel>` → when, in ms) for a grant's life, read back
 * when the node starts, so that its grants stay withdrawn on nodes started afterwards. A Redis that
 * lost its data lost them too: each node then keeps again those it knows, and says so.
 */
import type { Redis } from 'ioredis';
import type { ControlCommand, Revocation, ServerSubscriptionCommand } from '../../core/control.js';
import type { ControlListener } from '../../core/engine.js';
import { GRANT_TTL_MS } from '../../core/server-grants.js';
import { CONTROL_SCRIPT, REVOKE_SCRIPT } from './scripts.js';

export interface RedisControlOptions {
  readonly keyPrefix: string;
  readonly nodeId: string;
  readonly onError: (error: unknown, context: string) => void;
}

/** How long the control log keeps commands for the nodes that did not hear them. */
export const CONTROL_LOG_MS = 10 * 60_000;
/** Keys read per SCAN step, log entries per XRANGE step. */
const SCAN_COUNT = 500;
/** Kept things this node knows at most (the oldest go first): a bound on an operator's flood. */
const MAX_KNOWN = 100_000;

type Call = (...args: (string | number)[]) => Promise<unknown>;

export class RedisControl {
  readonly #channel: string;
  readonly #log: string;
  readonly #revokedPrefix: string;
  readonly #withdrawnPrefix: string;
  #listener: ControlListener | undefined;
  /** The log id of the last command heard; undefined until the node first connects. */
  #last: string | undefined;
  /** While the log is read back, what pub/sub brings meanwhile waits here, in order. */
  #waiting: [string, string][] | undefined;
  /** When the pub/sub connection dropped (unset while it is up). */
  #lostAt: number | undefined;
  /** What this node knows Redis keeps (revocations, withdrawals), by key, to keep it again if Redis loses its data. */
  readonly #known = new Map<string, { until: number; keep: () => Promise<unknown> }>();

  constructor(
    private readonly commands: Redis,
    private readonly subscriber: Redis,
    private readonly options: RedisControlOptions,
  ) {
    this.#channel = `${options.keyPrefix}control`;
    this.#log = `${options.keyPrefix}control:log`;
    this.#revokedPrefix = `${options.keyPrefix}revoked:`;
    this.#withdrawnPrefix = `${options.keyPrefix}withdrawn:`;
    commands.defineCommand('heraldRevoke', { numberOfKeys: 1, lua: REVOKE_SCRIPT });
    commands.defineCommand('heraldControl', { numberOfKeys: 2, lua: CONTROL_SCRIPT });
    subscriber.on('message', (channel: string, payload: string) => {
      if (channel === this.#channel) this.#receive(payload);
    });
    subscriber.on('close', () => (this.#lostAt ??= Date.now()));
  }

  onControl(listener: ControlListener): void {
    this.#listener = listener;
  }

  async broadcast(command: ControlCommand): Promise<void> {
    const withdrawal = command.kind === 'unsubscribe' ? this.#withdrawnKey(command) : undefined;
    const payload = JSON.stringify({ from: this.options.nodeId, command });
    await this.#call('heraldControl', this.#log, withdrawal ?? this.#log, this.#channel, payload, CONTROL_LOG_MS, withdrawal === undefined ? 0 : GRANT_TTL_MS);
    if (withdrawal !== undefined) this.#rememberWithdrawal(withdrawal, Date.now());
  }

  /** Keeps the revocation (merged with one kept already, atomically), then tells the other nodes of the merged one. */
  async revoke(revocation: Revocation): Promise<Revocation> {
    const before = revocation.kind === 'sub' ? revocation.before : 0;
    const [keptBefore, keptUntil] = ((await this.#call('heraldRevoke', this.#revokedKey(revocation), before, revocation.until)) as string[]).map(Number) as [number, number];
    const kept: Revocation = revocation.kind === 'jti' ? { ...revocation, until: keptUntil } : { ...revocation, before: keptBefore, until: keptUntil };
    this.#rememberRevocation(kept);
    await this.broadcast({ kind: 'revoke', revocation: kept });
    return kept;
  }

  /**
   * The pub/sub connection is (re)made: listens for commands, hands over those it missed (read
   * from the log after the last it heard; the whole log when Redis lost its data), the
   * withdrawals kept (the first time), and every kept revocation. When Redis lost its data,
   * first keeps again what this node knows was kept.
   */
  async connected(lostData: boolean): Promise<void> {
    const first = this.#last === undefined;
    const away = this.#lostAt === undefined ? 0 : Date.now() - this.#lostAt;
    this.#waiting = [];
    let read = false;
    try {
      await this.subscriber.subscribe(this.#channel);
      if (lostData) await this.#keepAgain();
      const [seconds, micros] = await this.commands.time();
      const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      if (first) {
        // Nothing to catch up on: no session of this node existed before.
        this.#last = `${now}-0`;
        await this.#readKept(this.#withdrawnPrefix, 'get', (name, [at]) => this.#handWithdrawal(name, at, now));
      } else {
        if (lostData) this.#last = '0-0';
        else if (away > CONTROL_LOG_MS) this.options.onError(new Error(`pub/sub was cut for ${Math.round(away / 1000)} s, longer than the control log keeps commands (${CONTROL_LOG_MS / 1000} s): kicks and server subscriptions sent meanwhile may not have reached this node`), 'control log');
        await this.#readLog(now);
      }
      await this.#readKept(this.#revokedPrefix, 'hmget', (name, values) => {
        const revocation = revocationOf(name, values);
        if (revocation !== undefined) this.#hand({ kind: 'revoke', revocation }, 0);
      });
      read = true;
      this.#lostAt = undefined;
    } finally {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      // When reading failed, the next try reads these from the log, in their order.
      if (read) for (const [id, payload] of waiting) this.#heard(id, payload, 0);
    }
  }

  async #readLog(now: number): Promise<void> {
    let start = `(${this.#last}`;
    for (;;) {
      const entries = await this.commands.xrange(this.#log, start, '+', 'COUNT', SCAN_COUNT);
      for (const [id, fields] of entries) this.#heard(id, fields[1] ?? '', Math.max(0, now - Number(id.slice(0, id.indexOf('-')))));
      if (entries.length < SCAN_COUNT) return;
      start = `(${entries[entries.length - 1]![0]}`;
    }
  }

  /** Every key under `prefix`, read with `how`, handed to `each` with the rest of its name. */
  async #readKept(prefix: string, how: 'get' | 'hmget', each: (name: string, values: (string | null)[]) => void): Promise<void> {
    const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let cursor = '0';
    do {
      const [next, keys] = await this.commands.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT);
      cursor = next;
      if (keys.length === 0) continue;
      const pipeline = this.commands.pipeline();
      for (const key of keys) {
        if (how === 'get') pipeline.get(key);
        else pipeline.hmget(key, 'before', 'until');
      }
      const fields = (await pipeline.exec()) ?? [];
      keys.forEach((key, index) => {
        const [error, values] = fields[index] ?? [];
        if (!error) each(key.slice(prefix.length), how === 'get' ? [values as string | null] : (values as (string | null)[]));
      });
    } while (cursor !== '0');
  }

  /** Redis lost its data: keeps again the revocations and withdrawals this node knows, and says so. */
  async #keepAgain(): Promise<void> {
    const now = Date.now();
    const live = [...this.#known].filter(([key, known]) => known.until > now || !this.#known.delete(key));
    await Promise.all(live.map(([, known]) => known.keep()));
    this.options.onError(new Error(`Redis lost its data: kept again the ${live.length} revocations and withdrawn grants this node knows; control commands this node did not hear before are lost`), 'control log');
  }

  #receive(payload: string): void {
    const space = payload.indexOf(' ');
    const id = payload.slice(0, space);
    const sent = payload.slice(space + 1);
    if (this.#waiting !== undefined) this.#waiting.push([id, sent]);
    else this.#heard(id, sent, 0);
  }

  /** A logged command, heard live (`sentAgoMs` 0) or read back; each is handed over once, in log order. */
  #heard(id: string, payload: string, sentAgoMs: number): void {
    if (this.#last !== undefined && !laterId(id, this.#last)) return;
    this.#last = id;
    let sent: { from?: unknown; command?: ControlCommand };
    try {
      sent = JSON.parse(payload);
    } catch (error) {
      this.options.onError(error, 'unreadable control command');
      return;
    }
    // The sender acted on its own node already.
    if (sent.from === this.options.nodeId || typeof sent.command !== 'object' || sent.command === null) return;
    this.#hand(sent.command, sentAgoMs);
  }

  #hand(command: ControlCommand, sentAgoMs: number): void {
    if (command.kind === 'revoke') this.#rememberRevocation(command.revocation);
    else if (command.kind === 'unsubscribe') this.#rememberWithdrawal(this.#withdrawnKey(command), Date.now() - sentAgoMs);
    try {
      this.#listener?.(command, sentAgoMs);
    } catch (error) {
      this.options.onError(error, `control command ${String(command.kind)}`);
    }
  }

  #handWithdrawal(name: string, at: string | null | undefined, now: number): void {
    const kind = name.slice(0, 2);
    const rest = name.slice(2);
    const colon = rest.indexOf(':');
    if ((kind !== 'u:' && kind !== 's:') || colon < 0 || at == null || !Number.isFinite(Number(at))) return;
    const who = decodeURIComponent(rest.slice(0, colon));
    const target = kind === 'u:' ? { user: who } : { session: who };
    this.#hand({ kind: 'unsubscribe', target, channel: rest.slice(colon + 1) }, Math.max(0, now - Number(at)));
  }

  #rememberRevocation(revocation: Revocation): void {
    const before = revocation.kind === 'sub' ? revocation.before : 0;
    const key = this.#revokedKey(revocation);
    this.#remember(key, revocation.until, () => this.#call('heraldRevoke', key, before, revocation.until));
  }

  #rememberWithdrawal(key: string, at: number): void {
    const until = at + GRANT_TTL_MS;
    this.#remember(key, until, async () => {
      const left = until - Date.now();
      if (left > 0) await this.commands.set(key, String(at), 'PX', left);
    });
  }

  #remember(key: string, until: number, keep: () => Promise<unknown>): void {
    const known = this.#known.get(key);
    if (known !== undefined && known.until >= until) return;
    this.#known.delete(key);
    this.#known.set(key, { until, keep });
    if (this.#known.size > MAX_KNOWN) this.#known.delete(this.#known.keys().next().value!);
  }

  #revokedKey(revocation: Revocation): string {
    return this.#revokedPrefix + (revocation.kind === 'jti' ? `jti:${revocation.jti}` : `sub:${revocation.sub}`);
  }

  #withdrawnKey({ target, channel }: ServerSubscriptionCommand): string {
    const [kind, who] = 'user' in target ? ['u', target.user] : ['s', target.session];
    return `${this.#withdrawnPrefix}${kind}:${encodeURIComponent(who)}:${channel}`;
  }

  #call(command: string, ...args: (string | number)[]): Promise<unknown> {
    return (this.commands as unknown as Record<string, Call>)[command]!(...args);
  }
}

/** Whether stream id `a` (`<ms>-<seq>`) comes after `b`. */
function laterId(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am > bm || (am === bm && as > bs);
}

function revocationOf(name: string, [before, until]: (string | null)[]): Revocation | undefined {
  const untilMs = Number(until);
  // Gone between SCAN and HMGET (expired), or not written by Herald.
  if (until == null || !Number.isFinite(untilMs)) return undefined;
  if (name.startsWith('jti:')) return { kind: 'jti', jti: name.slice(4), until: untilMs };
  if (name.startsWith('sub:') && Number.isFinite(Number(before))) return { kind: 'sub', sub: name.slice(4), before: Number(before), until: untilMs };
  return undefined;
}
