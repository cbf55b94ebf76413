/**
 * @module
 * What every meta-channel handler is given: the node's shared state, and the batch it is part of.
 */
import type { DecisionHooks } from '../core/hooks.js';
import type { AccessPolicy } from '../core/access.js';
import type { Engine } from '../core/engine.js';
import type { Hub } from '../core/hub.js';
import type { AddressRates } from '../core/limits.js';
import type { Publisher } from '../core/publisher.js';
import type { Delivery } from '../core/message.js';
import type { RequestContext } from '../core/protocol.js';
import type { Session } from '../core/session.js';
import type { SessionStore } from '../core/session-store.js';
import type { AdviceTimings } from './advice.js';
import type { BrowserHolds } from './browser-holds.js';
import type { BayeuxMessage, BayeuxReply } from './message.js';
import type { PendingTimesync } from './ext/timesync.js';
import type { ServerSubscriptions } from './server-subscriptions.js';
import type { ServiceRegistry } from './services.js';
import type { TokenSubscriptions } from './token-subscriptions.js';
import type { ControlPlane } from '../core/control-plane.js';

export interface BayeuxOptions extends AdviceTimings {
  /** Connection types this server offers, in order of preference. */
  readonly connectionTypes: readonly string[];
  /** Long-polls one browser may hold at once (Bayeux §Multiple clients); < 0 = unlimited. */
  readonly maxSessionsPerBrowser: number;
  /** Poll interval advised to a browser's extra sessions. */
  readonly multiSessionIntervalMs: number;
  /** Accept publishes that carry no clientId (REST-style publishing into Bayeux). */
  readonly allowPublishWithoutSession: boolean;
  /** Subscriptions one session may hold. */
  readonly maxSubscriptions: number;
}

export interface BayeuxDeps {
  readonly options: BayeuxOptions;
  readonly sessions: SessionStore;
  readonly hub: Hub;
  readonly engine: Engine;
  /** The only way a message is published (checks, then the engine). */
  readonly publisher: Publisher;
  readonly access: AccessPolicy;
  /** True while the server drains: no new sessions. */
  readonly isDraining: () => boolean;
  readonly browsers: BrowserHolds;
  readonly services: ServiceRegistry;
  /** Subscriptions that end when the token that granted them expires. */
  readonly tokenSubscriptions: TokenSubscriptions;
  /** The rate of publishes without a session, per address (none: unlimited). */
  readonly addressRates?: AddressRates;
  /** Checks the grants that keep server subscriptions across reconnects (none: no server subscriptions). */
  readonly control?: ControlPlane;
  /** Puts sessions on channels by the backend's word (a connect hook's `channels`); none: no server subscriptions. */
  readonly serverSubscriptions?: ServerSubscriptions | undefined;
  /** The application's backend, asked where the rules say `hook` (and at handshakes, with a connect hook). */
  readonly hooks: DecisionHooks;
}

/**
 * A held connect, waiting for messages: what its reply needs of the request, not the request. The
 * rest (channel, clientId, connectionType, advice, each a fresh string) would stay in memory with
 * every held connect, by the ten thousand.
 */
export interface HeldConnect {
  readonly session: Session;
  /** The request's `id`, which the reply echoes (echoId). */
  readonly id: string | number | undefined;
  /** The request's timesync, when it asked for one. */
  readonly timesync: PendingTimesync | undefined;
}

/** A connect to hold, and for how long. */
export interface ConnectToHold extends HeldConnect {
  readonly timeoutMs: number;
}

/** State shared by the handlers of one request's messages. */
export class Batch {
  /** The session whose queued messages this reply carries (set by a connect answered now). */
  deliverFrom: Session | undefined;
  /** The session a handshake created or a connect named, for transports that bind to it. */
  session: Session | undefined;
  held: ConnectToHold | undefined;
  newBrowserId: string | undefined;
  /** Deliveries a connect reply already took (acknowledged delivery numbers them as it takes them); none: undefined. */
  taken: Delivery[] | undefined;
  /** The clientId of the first message that offered to take deliveries on this reply (ext/piggyback.ts). */
  piggybackFor: unknown;

  constructor(
    readonly context: RequestContext,
    readonly size: number,
  ) {}

  takeDeliveries(): Delivery[] {
    const rest = this.deliverFrom?.drain() ?? [];
    const taken = this.taken;
    return taken === undefined || taken.length === 0 ? rest : taken.concat(rest);
  }
}

export type MetaHandler = (message: BayeuxMessage, batch: Batch, deps: BayeuxDeps) => Promise<BayeuxReply[]> | BayeuxReply[];

/**
 * The session a message names, if it exists and the request may act for it. A request carrying a
 * different `BAYEUX_BROWSER` cookie than the one the session was created under is refused (a stolen
 * clientId is not enough); a request with no cookie at all (cross-site, non-browser) is trusted.
 */
export function findSession(message: BayeuxMessage, batch: Batch, deps: BayeuxDeps): Session | undefined {
  return sessionFor(message.clientId, batch.context, deps);
}

export function sessionFor(clientId: unknown, context: RequestContext, deps: BayeuxDeps): Session | undefined {
  const session = deps.sessions.get(clientId);
  if (session === undefined) return undefined;
  const cookie = context.browserId;
  if (cookie !== undefined && session.browserId !== undefined && cookie !== session.browserId) return undefined;
  return session;
}
