/**
 * @module
 * The Engine: where messages get their ids, live in history, and travel between the nodes of a
 * cluster. Every method is async so that a networked engine (Redis) has the same shape as the
 * embedded MemoryEngine. Fan-out to local sessions is not the engine's job (see hub.ts): the engine
 * hands each message to the node's listener, once.
 *
 * An engine whose store is out of reach rejects with HERALD_ERR_ENGINE_UNAVAILABLE rather than
 * queueing: the caller tells its client to retry, nothing is silently dropped.
 */
import type { ControlCommand, Revocation } from './control.js';
import type { Message } from './message.js';
import type { Outbox } from './outbox.js';

export interface PublishRequest {
  readonly channel: string;
  readonly data: unknown;
  /** Bytes of `data` as JSON, when the caller measured them already (it checks the size limit). */
  readonly size?: number;
  /** `data` as JSON, when the caller wrote it already (to measure it): not written again. */
  readonly json?: string;
  /**
   * Makes a retried publish take effect at most once: the first publish with this key is stored
   * (atomically with the key), and any other with the same key within `windowMs` is not, but
   * answered with the first one's id and channel (`duplicate`).
   */
  readonly idempotency?: { readonly key: string; readonly windowMs: number };
}

/** A publish's message; `duplicate`: its idempotency key was used already, so nothing was stored and this is the first publish's id and channel. */
export type Published = Message & { readonly duplicate?: true };

/**
 * A question put to every node of a cluster (inspection.ts): each answers it with what it holds
 * itself, as JSON.
 */
export type Inquiry = { readonly kind: string } & Readonly<Record<string, unknown>>;

/** What the other nodes said: each answer with the node it came from, and the live nodes that said nothing in time. */
export interface InquiryAnswers {
  readonly answers: readonly { readonly node: string; readonly answer: unknown }[];
  readonly unanswered: readonly string[];
}

/** Answers an inquiry from another node with this node's part (JSON). */
export type InquiryResponder = (inquiry: Inquiry) => unknown;

export interface HistoryQuery {
  /** Return messages with an id greater than this one; omitted = from the oldest kept. */
  readonly since?: string;
  /** At most this many (the oldest first). */
  readonly limit?: number;
}

export interface HistoryPage {
  readonly messages: readonly Message[];
  /**
   * True when messages after `since` were already evicted, so the reader missed some: the
   * explicit gap signal. Never a silent skip. Also true when `since` sorts after every id the
   * engine could have given by now (core/ids.ts isFutureId): nothing it holds can be vouched for.
   */
  readonly gap: boolean;
}

/** `json`: the message's data as JSON, when the engine has it at hand (its encoders need not write it again). */
export type MessageListener = (message: Message, json?: string) => void;

/**
 * Told of a control command another node sent, or of one the engine keeps (a revocation, a
 * withdrawn grant: control-plane.ts). `sentAgoMs` is how long ago it was sent: 0 as it happens; more
 * for one a node hears late (it was cut off from the engine meanwhile, or started afterwards),
 * which then reaches only what existed when it was sent (a session opened since is not kicked).
 */
export type ControlListener = (command: ControlCommand, sentAgoMs: number) => void;

/**
 * Told that this node's subscribers may have missed messages the engine cannot bring any more (its
 * store restarted empty, or its pub/sub link was cut and history cannot fill the hole):
 * `channel` is a concrete channel (every local subscription matching it missed some of its
 * messages) or a pattern the node subscribed with (its subscribers missed messages on channels
 * it matches). The hub tells each such session: a loss is never silent.
 */
export type GapListener = (channel: string) => void;

/** One session subscribing to a channel, as it joins presence (core/presence.ts). */
export interface PresenceJoin {
  /** The session's public id (never its clientId, which is a secret of its holder). */
  readonly session: string;
  /** The user it acts for: the token's `sub`, or the session's public id when `anonymous`. */
  readonly user: string;
  readonly anonymous?: true;
  /** What the user shows of itself (a token's `info` claim), JSON of bounded size. */
  readonly info?: unknown;
}

/** One session subscribed to a channel, on some node of the cluster. */
export interface PresenceEntry extends PresenceJoin {
  /** The node that holds the session. */
  readonly node: string;
  /** When it subscribed, in milliseconds since the epoch. */
  readonly joinedAt: number;
}

/**
 * Told that the sessions subscribed to `channel` (a name or pattern) may have changed on some
 * node; the listener reads presence() again. A node that dies tells nothing: its entries lapse.
 */
export type PresenceListener = (channel: string) => void;

/** What a sweep of the user records found (Engine.sweepUsers). */
export interface UserSweep {
  /** Users whose last connection has been gone for the grace window: offline now. */
  readonly offline: readonly string[];
  /**
   * Users this node's connections made online without a call saying so: it counted them while
   * the store was out of reach, and wrote them when it came back.
   */
  readonly online: readonly string[];
}

export interface EngineHealth {
  readonly healthy: boolean;
  /** What is wrong, when something is. */
  readonly detail?: string;
}

export interface Engine {
  /**
   * Assigns the message its id, appends it to the channel's history and hands it to the listener
   * of every node with interest in a matching pattern. Guarantees: ids are strictly increasing per
   * channel; listeners see one channel's messages in id order; the promise resolves after this
   * node's listener has run (so a publisher subscribed to its own channel already has the message
   * queued). With an idempotency key already used within its window, nothing is stored or sent:
   * the first publish's id and channel come back, marked `duplicate` (cluster-wide on Redis, per
   * node and bounded in memory).
   */
  publish(request: PublishRequest): Promise<Published>;
  /**
   * This node has local subscribers to `pattern` (the hub calls it once per pattern, not per
   * session). Resolves once messages published from then on reach the listener; a call for a
   * pattern already being subscribed to resolves no earlier than the first.
   */
  subscribe(pattern: string): Promise<void>;
  /** This node has no local subscribers to `pattern` any more. */
  unsubscribe(pattern: string): Promise<void>;
  /** Stored messages of one concrete channel. */
  history(channel: string, query?: HistoryQuery): Promise<HistoryPage>;
  /**
   * A resume point for `channel`: an id below every id the channel will give from now on (the
   * newest kept message's, or a fresh one). History read `since` it later holds exactly what was
   * published after this call, or says there is a gap.
   */
  position(channel: string): Promise<string>;
  /**
   * Records that a session of this node subscribes to `channel` (a name or pattern), for
   * `presence`, and tells every node's presence listener. Idempotent per session. Entries of a
   * node that dies leave by themselves once its liveness lapses.
   */
  join(channel: string, entry: PresenceJoin): Promise<void>;
  /** The session (its public id) no longer subscribes to `channel`; every node's presence listener is told. */
  leave(channel: string, session: string): Promise<void>;
  /** The sessions subscribed to exactly `channel` (a name or pattern), on every live node. */
  presence(channel: string): Promise<readonly PresenceEntry[]>;
  /** Sets the node's single presence listener (see PresenceListener). */
  onPresence(listener: PresenceListener): void;
  /** Whether the engine can serve now (the store is reachable). Cheap: no I/O. */
  health(): EngineHealth;
  /** Forgets a channel's stored messages; readers asking from before now get a gap. */
  deleteHistory(channel: string): Promise<void>;
  /** What this node's history holds, when the engine can tell without I/O (for metrics). */
  historyCounts?(): { readonly channels: number; readonly messages: number };
  /** Idempotency keys forgotten before their window ended, to stay within the engine's bound (an engine that keeps them per node). */
  idempotencyKeysForgotten?(): number;
  /** Sets the node's single message listener. */
  onMessage(listener: MessageListener): void;
  /** Sets the node's single gap listener (an engine that never loses a message never calls it). */
  onGap(listener: GapListener): void;
  /**
   * Sends a control command to every other node of the cluster (the caller acts on its own
   * node itself); they hear it within a round trip, at most once. A node cut off from the
   * engine's store meanwhile hears it once it is back (with Redis, if it was away less than the
   * control log keeps commands), with how long ago it was sent. An unsubscribe is also kept for a
   * grant's life, and handed to nodes started afterwards (its grants stay withdrawn there).
   */
  broadcast(command: ControlCommand): Promise<void>;
  /**
   * Keeps a revocation until its `until`, merged with any kept for the same token or subject
   * (the wider one wins), and sends it to the other nodes; resolves with the merged revocation.
   * Every revocation kept is handed to the control listener again whenever the node (re)connects
   * to the engine's store, so a node that restarts or was cut off knows them all. The memory
   * engine keeps them on this node only.
   */
  revoke(revocation: Revocation): Promise<Revocation>;
  /** Sets the node's single control listener. */
  onControl(listener: ControlListener): void;
  /** This node's name in the cluster (presence, inspection). */
  readonly nodeId: string;
  /**
   * Asks every other live node `inquiry` and resolves with the answers that came within
   * `waitMs`, and the live nodes that did not answer (a node that died moments ago still counts
   * as live until its liveness lapses). The memory engine has no other node: no answers.
   */
  inquire(inquiry: Inquiry, waitMs: number): Promise<InquiryAnswers>;
  /** Sets how this node answers other nodes' inquiries. */
  onInquiry(responder: InquiryResponder): void;
  /**
   * A handle on the outbox `name` (core/outbox.ts), which keeps at most `maxLength` entries:
   * events owed to outside receivers, stored once cluster-wide and sent by one handle's holder of
   * the lease at a time — in Redis, so that they outlive the node that saw them; in memory, in
   * this process (every handle on a name shares it).
   */
  outbox(name: string, maxLength: number): Outbox;
  /**
   * User tracking (core/user-presence.ts, states in core/user-records.ts): a connection of `user`
   * (a token's `sub`) opened on this node. True when the user thereby came online — its first
   * connection anywhere in the cluster, not one back within its grace window — answered true to
   * this one call in the cluster. Calls of one node take effect in the order they were made.
   */
  userConnected(user: string): Promise<boolean>;
  /**
   * A connection of `user` on this node closed. True when it was the user's last anywhere: the
   * user is leaving from now (the store's clock), offline once a sweep finds its grace window passed.
   */
  userDisconnected(user: string): Promise<boolean>;
  /**
   * Users that have been leaving for `graceMs`: offline, each given to one caller in the cluster.
   * The connections of dead nodes (their liveness lapsed, as for presence) are dropped first, and
   * users left without any begin leaving then.
   */
  sweepUsers(graceMs: number): Promise<UserSweep>;
  close(): Promise<void>;
}
