/**
 * @module
 * The control plane on one node: it acts on the disconnects, revocations and server subscriptions an operator asks for,
 * here and — through the engine — on every other node, and screens every token use against the
 * revocations known. Acting on a node is a walk over its sessions (an operator's rare request,
 * never a hot path); REST streams and long-polls are sessions too, so one walk reaches every door.
 */
import type { Principal, TokenCheck } from './access.js';
import { covers } from './access.js';
import type { Clock } from './clock.js';
import type { ControlCommand, DisconnectCommand, DisconnectTarget, Revocation, ServerSubscriptionCommand } from './control.js';
import type { Engine } from './engine.js';
import { Revocations } from './revocations.js';
import { ServerGrants } from './server-grants.js';
import type { Session } from './session.js';
import type { SessionStore } from './session-store.js';

/** What a token check says of a revoked token. */
export const REVOKED_MESSAGE = 'token revoked';

/**
 * Puts the sessions a server subscription reached on its channel, or takes them off it, and tells
 * their clients (the protocol's business: bayeux/server-subscriptions.ts). Resolves with how many
 * it reached.
 */
export interface ServerSubscriber {
  apply(sessions: readonly Session[], command: ServerSubscriptionCommand): Promise<number>;
}

export class ControlPlane {
  readonly #revocations = new Revocations();
  /** The grants that let clients keep server subscriptions across reconnects. */
  readonly grants: ServerGrants;
  #subscriber: ServerSubscriber | undefined;

  constructor(
    private readonly engine: Engine,
    private readonly sessions: SessionStore,
    private readonly clock: Clock,
    /** Signs grants: the same on every node of a cluster (derived from the publish key). */
    grantSecret: Uint8Array,
    private readonly onError: (error: unknown, context: string) => void = () => {},
  ) {
    this.grants = new ServerGrants(grantSecret, clock);
    engine.onControl((command, sentAgoMs) => this.#apply(command, sentAgoMs));
  }

  /** Who carries out server subscriptions (without one, they reach nobody). */
  serveSubscriptions(subscriber: ServerSubscriber): void {
    this.#subscriber = subscriber;
  }

  /** Revocations known on this node (tokens and subjects). */
  get revocationCount(): number {
    return this.#revocations.size;
  }

  /**
   * Disconnects the sessions `command` names on every node. Sent to the others first, so that
   * when the engine is out of reach nothing happens anywhere and the caller may simply retry.
   * Resolves with how many sessions closed on this node.
   */
  async disconnect(command: DisconnectCommand): Promise<number> {
    await this.engine.broadcast(command);
    return this.#disconnect(command, 0);
  }

  /** Revokes tokens on every node, and ends the sessions and streams that act with one. Resolves with how many closed on this node. */
  async revoke(revocation: Revocation): Promise<number> {
    const kept = await this.engine.revoke(revocation);
    return this.#revoke(kept);
  }

  /**
   * Subscribes (or unsubscribes) the live sessions `command` names to its channel on every node.
   * Sent to the others first, as a disconnect is. Resolves with how many sessions it reached on
   * this node, once their subscriptions are live.
   */
  async serverSubscription(command: ServerSubscriptionCommand): Promise<number> {
    await this.engine.broadcast(command);
    return this.#serverSubscription(command, 0);
  }

  /** A successful check of a revoked token becomes a refusal (reason `revoked`): every door verifies through here. */
  screen(check: TokenCheck): TokenCheck {
    if (!check.ok || !this.#revocations.revokes(check.principal, this.clock.now())) return check;
    return { ok: false, reason: 'revoked', message: REVOKED_MESSAGE };
  }

  /** A command heard late (`sentAgoMs`) reaches only the sessions opened before it was sent. */
  #apply(command: ControlCommand, sentAgoMs: number): void {
    if (command.kind === 'disconnect') this.#disconnect(command, sentAgoMs);
    else if (command.kind === 'revoke') this.#revoke(command.revocation);
    else if (command.kind === 'subscribe' || command.kind === 'unsubscribe') {
      this.#serverSubscription(command, sentAgoMs).catch((error) => this.onError(error, `server ${command.kind} ${command.channel}`));
    }
  }

  async #serverSubscription(command: ServerSubscriptionCommand, sentAgoMs: number): Promise<number> {
    const sentAt = this.clock.now() - Math.max(0, sentAgoMs);
    if (command.kind === 'unsubscribe') this.grants.withdraw(command.target, command.channel, sentAt);
    const reached = this.#select(command.target, sentAt);
    return reached.length === 0 || this.#subscriber === undefined ? 0 : this.#subscriber.apply(reached, command);
  }

  #disconnect(command: DisconnectCommand, sentAgoMs: number): number {
    const reached = this.#select(command.target, this.clock.now() - Math.max(0, sentAgoMs));
    for (const session of reached) this.sessions.close(session, command.reconnect ? 'kicked' : 'banned', command.note);
    return reached.length;
  }

  #revoke(revocation: Revocation): number {
    const now = this.clock.now();
    this.#revocations.add(revocation, now);
    const reached = this.sessions.all().filter((session) => holdsRevoked(session.principal, this.#revocations, now));
    for (const session of reached) this.sessions.close(session, 'token_revoked');
    return reached.length;
  }

  /** The sessions `target` names among those opened by `sentAt`. */
  #select(target: DisconnectTarget | ServerSubscriptionCommand['target'], sentAt: number): Session[] {
    const all = this.sessions.all().filter((session) => session.openedAt <= sentAt);
    if ('session' in target) return all.filter((session) => session.publicId === target.session);
    if ('user' in target) return all.filter((session) => session.principal?.subject === target.user);
    // Subscribers of the pattern: sessions holding a subscription inside it (`/chat/**` reaches
    // those of `/chat/a`, `/chat/*` and `/chat/**`; `/chat/a` only those of `/chat/a` itself).
    return all.filter((session) => [...session.subscriptions].some((subscription) => covers(target.channel, subscription)));
  }
}

function holdsRevoked(principal: Principal | undefined, revocations: Revocations, now: number): boolean {
  return principal !== undefined && revocations.revokes(principal, now);
}
