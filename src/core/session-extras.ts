/**
 * @module
 * What only some sessions need, kept out of Session itself and made on first use: an idle
 * connection's session is one of the largest things a server holds per client (issue 16), and
 * most of these stay unset for its whole life — gaps to tell, a message rate, resends to
 * recognise, a resume's replay mark, subscription guards, the Bayeux browser cookie, a close
 * note, and the in-flight count of a stream that carries connects.
 */
import type { RateBucket } from './limits.js';
import type { SubscriptionGuard } from './subscription-guard.js';

/** Publish ids a session remembers for resends. */
const RECENT_PUBLISHES = 64;

export class SessionExtras {
  /** The subscriptions that reach only some channels of their pattern, each with its check (hub.ts). */
  guards: Map<string, SubscriptionGuard> | undefined;
  /** The `BAYEUX_BROWSER` cookie the session was created under, if any. */
  browserId: string | undefined;
  /** What an anonymous session shows in presence (its handshake's `ext.herald.info`): a name the page chose. */
  handle: unknown;
  /** An operator's words on why it was closed (control plane), if any. */
  closeNote: string | undefined;
  rate: RateBucket | undefined;
  /** Channels (or patterns) that lost deliveries since the client was last told: slow-consumer drops, engine gaps. */
  gaps: Set<string> | undefined;
  /**
   * Per channel, the last id a resume replayed, until a live message passes it: a copy of a
   * replayed message that arrives live afterwards is not delivered twice (see Session.replay).
   */
  replayedUpTo: Map<string, string> | undefined;
  /**
   * Deliveries pushed to the current stream (one that carries connects), how many of them had
   * left when the last connect reply did, and how many the client has shown it received. TCP keeps
   * order: a connect sent after a reply shows that everything written before that reply arrived.
   */
  pushed = 0;
  pushedBeforeReply = 0;
  pushedConfirmed = 0;
  /** A stream ended with deliveries the client had not shown it received: they may never have arrived. */
  lostInFlight = false;
  /** Ids of the client's recent publishes, oldest first: clients (Faye) resend until they see a reply. */
  #recentPublishes: (string | number)[] | undefined;

  publishedRecently(id: string | number): boolean {
    return this.#recentPublishes?.includes(id) === true;
  }

  rememberPublish(id: string | number): void {
    const recent = (this.#recentPublishes ??= []);
    recent.push(id);
    if (recent.length > RECENT_PUBLISHES) recent.shift();
  }

  /** Whether a delivery on `channel` with `id` was replayed already; forgets the mark once a newer one passes. */
  replayed(channel: string, id: string): boolean {
    const upTo = this.replayedUpTo?.get(channel);
    if (upTo === undefined) return false;
    if (id <= upTo) return true;
    // A channel's messages arrive in id order: nothing older comes after this one.
    this.replayedUpTo!.delete(channel);
    if (this.replayedUpTo!.size === 0) this.replayedUpTo = undefined;
    return false;
  }

  /** The stream that carried connects ended: what it held unconfirmed may never have arrived. */
  streamEnded(): void {
    if (this.pushed > this.pushedConfirmed) this.lostInFlight = true;
    this.pushed = this.pushedBeforeReply = this.pushedConfirmed = 0;
  }
}
