/**
 * @module
 * The control plane across the cluster: commands travel on one pub/sub channel (`<prefix>control`)
 * that every node listens to, each stamped with its sender so that a node does not act twice on
 * its own. Revocations are also kept, one hash per token or subject (`<prefix>revoked:jti:<jti>`,
 * `<prefix>revoked:sub:<sub>`, fields `before` and `until` in ms) that expires at its `until`;
 * a node reads them all back whenever its pub/sub connection is (re)made — at start, and after
 * an outage during which it may have missed some — so revocations outlive any node.
 */
import type { Redis } from 'ioredis';
import type { ControlCommand, Revocation } from '../../core/control.js';
import type { ControlListener } from '../../core/engine.js';
import { REVOKE_SCRIPT } from './scripts.js';

export interface RedisControlOptions {
  readonly keyPrefix: string;
  readonly nodeId: string;
  readonly onError: (error: unknown, context: string) => void;
}

/** Keys read per SCAN step when revocations are read back. */
const SCAN_COUNT = 500;

export class RedisControl {
  readonly #channel: string;
  readonly #revokedPrefix: string;
  #listener: ControlListener | undefined;

  constructor(
    private readonly commands: Redis,
    private readonly subscriber: Redis,
    private readonly options: RedisControlOptions,
  ) {
    this.#channel = `${options.keyPrefix}control`;
    this.#revokedPrefix = `${options.keyPrefix}revoked:`;
    commands.defineCommand('heraldRevoke', { numberOfKeys: 1, lua: REVOKE_SCRIPT });
    subscriber.on('message', (channel: string, payload: string) => {
      if (channel === this.#channel) this.#receive(payload);
    });
  }

  onControl(listener: ControlListener): void {
    this.#listener = listener;
  }

  async broadcast(command: ControlCommand): Promise<void> {
    await this.commands.publish(this.#channel, JSON.stringify({ from: this.options.nodeId, command }));
  }

  /** Keeps the revocation (merged with one kept already, atomically), then tells the other nodes of the merged one. */
  async revoke(revocation: Revocation): Promise<Revocation> {
    const key = this.#revokedPrefix + (revocation.kind === 'jti' ? `jti:${revocation.jti}` : `sub:${revocation.sub}`);
    const before = revocation.kind === 'sub' ? revocation.before : 0;
    const [keptBefore, keptUntil] = (await (this.commands as unknown as Record<string, (...a: (string | number)[]) => Promise<[string, string]>>).heraldRevoke!(key, before, revocation.until)).map(Number) as [number, number];
    const kept: Revocation = revocation.kind === 'jti' ? { ...revocation, until: keptUntil } : { ...revocation, before: keptBefore, until: keptUntil };
    await this.broadcast({ kind: 'revoke', revocation: kept });
    return kept;
  }

  /** The pub/sub connection is (re)made: listens for commands, then hands every kept revocation to the listener. */
  async connected(): Promise<void> {
    await this.subscriber.subscribe(this.#channel);
    const match = `${this.#revokedPrefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let cursor = '0';
    do {
      const [next, keys] = await this.commands.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT);
      cursor = next;
      if (keys.length === 0) continue;
      const pipeline = this.commands.pipeline();
      for (const key of keys) pipeline.hmget(key, 'before', 'until');
      const fields = (await pipeline.exec()) ?? [];
      keys.forEach((key, index) => {
        const [error, values] = fields[index] ?? [];
        if (error) return;
        const revocation = this.#revocationOf(key.slice(this.#revokedPrefix.length), values as (string | null)[]);
        if (revocation !== undefined) this.#hand({ kind: 'revoke', revocation });
      });
    } while (cursor !== '0');
  }

  #revocationOf(name: string, [before, until]: (string | null)[]): Revocation | undefined {
    const untilMs = Number(until);
    // Gone between SCAN and HMGET (expired), or not written by Herald.
    if (until === null || !Number.isFinite(untilMs)) return undefined;
    if (name.startsWith('jti:')) return { kind: 'jti', jti: name.slice(4), until: untilMs };
    if (name.startsWith('sub:') && Number.isFinite(Number(before))) return { kind: 'sub', sub: name.slice(4), before: Number(before), until: untilMs };
    return undefined;
  }

  #receive(payload: string): void {
    let sent: { from?: unknown; command?: ControlCommand };
    try {
      sent = JSON.parse(payload);
    } catch (error) {
      this.options.onError(error, 'unreadable control command');
      return;
    }
    // The sender acted on its own node already.
    if (sent.from === this.options.nodeId || typeof sent.command !== 'object' || sent.command === null) return;
    this.#hand(sent.command);
  }

  #hand(command: ControlCommand): void {
    try {
      this.#listener?.(command);
    } catch (error) {
      this.options.onError(error, `control command ${String(command.kind)}`);
    }
  }
}
