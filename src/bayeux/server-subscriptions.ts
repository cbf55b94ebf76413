/**
 * @module
 * Server-side subscriptions on this node's Bayeux sessions: the backend puts a session on a
 * channel (or pattern) whatever the access rules say, or takes it off, and its client is told by a
 * meta message riding the session's queue — ahead of the channel's first message, after its last:
 *
 *   {"channel":"/meta/subscribe","successful":true,"subscription":"/user/42/notifications",
 *    "ext":{"herald":{"server":true,"grant":"…","last":"…"}}}
 *   {"channel":"/meta/unsubscribe","successful":true,"subscription":"/user/42/notifications",
 *    "ext":{"herald":{"server":true}}}
 *
 * The Herald client takes them as server subscriptions (resumed after reconnects with the grant,
 * from `last` or the last id it saw); CometD and Faye find no request of theirs they answer and
 * pass them over, while the messages on the channel arrive on their connection (README).
 * REST streams (`/sub`) keep the channels their URL names: they are not reached.
 */
import type { Clock } from '../core/clock.js';
import type { ServerSubscriptionCommand } from '../core/control.js';
import type { ServerSubscriber } from '../core/control-plane.js';
import type { Engine } from '../core/engine.js';
import type { Hub } from '../core/hub.js';
import { Delivery } from '../core/message.js';
import type { ServerGrants } from '../core/server-grants.js';
import type { Session } from '../core/session.js';
import type { SessionStore } from '../core/session-store.js';
import { parseChannel } from '../core/channel.js';
import type { TokenSubscriptions } from './token-subscriptions.js';

export class ServerSubscriptions implements ServerSubscriber {
  constructor(
    private readonly parts: {
      readonly hub: Hub;
      readonly engine: Engine;
      readonly sessions: SessionStore;
      readonly tokenSubscriptions: TokenSubscriptions;
      readonly grants: ServerGrants;
      readonly clock: Clock;
    },
  ) {}

  async apply(candidates: readonly Session[], command: ServerSubscriptionCommand): Promise<number> {
    const { channel } = command;
    const sessions = candidates.filter((session) => !session.isClosed && !isRestStream(session) && (command.kind === 'subscribe' || session.subscriptions.has(channel)));
    if (sessions.length === 0) return 0;
    if (command.kind === 'unsubscribe') {
      await Promise.all(sessions.map((session) => this.#unsubscribe(session, channel)));
      return sessions.length;
    }
    // Where a client that reconnects before any message arrives resumes from. Taken before the
    // subscriptions are live: a message published in between comes after it (as subscribe.ts does).
    const last = parseChannel(channel)?.wildcard === 'none' ? await this.parts.engine.position(channel) : undefined;
    await Promise.all(sessions.map((session) => this.#subscribe(session, channel, last)));
    return sessions.length;
  }

  async #subscribe(session: Session, channel: string, last: string | undefined): Promise<void> {
    const { hub, tokenSubscriptions, grants, clock } = this.parts;
    const now = clock.now();
    const grant = grants.issue(channel, session.principal?.subject, session.publicId);
    // Held now by the backend's word, not until a subscribe token of the client's expires.
    tokenSubscriptions.release(session, [channel]);
    const herald: Record<string, unknown> = { server: true, grant };
    if (last !== undefined) herald.last = last;
    // Queued before the subscription can deliver: the client knows the channel before its first message.
    this.#tell(session, '/meta/subscribe', channel, herald, now);
    // Without a guard: the backend is trusted, its subscription is not held to the access rules.
    await hub.subscribe(session, channel);
  }

  async #unsubscribe(session: Session, channel: string): Promise<void> {
    this.parts.tokenSubscriptions.release(session, [channel]);
    // The index forgets the session now (before any await), so nothing on the channel follows the notice.
    const done = this.parts.hub.unsubscribe(session, channel);
    this.#tell(session, '/meta/unsubscribe', channel, { server: true }, this.parts.clock.now());
    await done;
  }

  #tell(session: Session, meta: string, channel: string, herald: Record<string, unknown>, now: number): void {
    const notice = new Delivery({ id: '', channel: meta, data: { successful: true, subscription: channel, ext: { herald } }, publishedAt: now });
    // Not a published message: no publish→deliver latency to measure.
    notice.sent = true;
    if (!session.enqueue(notice)) this.parts.sessions.close(session, 'queue_full');
  }
}

/** A `/sub` stream or poll: its channels are the ones its URL names. */
function isRestStream(session: Session): boolean {
  return session.transport?.startsWith('rest-') === true;
}
