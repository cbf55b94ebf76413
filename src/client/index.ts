/**
 * @module
 * `herald/client`: the Herald client for browsers, Node and bundlers.
 */
export { Herald } from './herald.js';
export { CLIENT_DEFAULTS } from './client-options.js';
export type { HeraldClientOptions, HistoryMessage, MessageHandler, MessageInfo, SubscribeOptions, Subscription } from './herald.js';
export { Backoff, BACKOFF_DEFAULTS } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { PublishError } from './link.js';
export type { IntervalPolling } from './transport-choice.js';
export type { ActivitySource } from './activity.js';
export { HandshakeError } from './connection.js';
export type { TokenSource } from './connection.js';
export { CONNECTION_TYPES } from './protocol.js';
export type { ConnectionType } from './protocol.js';
export type { PresenceCount, PresenceListing, PresenceMember, SubscriptionEvents } from './presence.js';
export type { PublishReply, State, StateDetail } from './upstream.js';
export type { EventSourceConstructor, WebSocketConstructor } from './transports/transport.js';
