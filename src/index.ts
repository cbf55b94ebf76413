/**
 * @module
 * Herald's public API: create a server, attach it to yours, publish, extend.
 */
export { createHerald, HERALD_DEFAULTS, TRANSPORT_NAMES } from './server/create-herald.js';
export type { Herald, HeraldOptions, HeraldStats, TransportName } from './server/create-herald.js';
export type { Extension, ExtensionContext, ExtensionHook } from './bayeux/extensions.js';
export type { BayeuxMessage } from './bayeux/message.js';
export type { ServiceHandler, ServiceRequest } from './bayeux/services.js';
export type { Engine, EngineHealth, HistoryPage, HistoryQuery, PresenceEntry, PublishRequest } from './core/engine.js';
export type { PresenceMember } from './core/presence.js';
export { MemoryEngine } from './core/memory-engine.js';
export type { MemoryEngineOptions } from './core/memory-engine.js';
export { RedisEngine, REDIS_ENGINE_DEFAULTS } from './engines/redis/redis-engine.js';
export type { RedisEngineOptions } from './engines/redis/redis-engine.js';
export type { Message } from './core/message.js';
export type { Audience, ChannelRule, Permissions, Principal } from './core/access.js';
export type { LimitName } from './core/limits.js';
export type { SlowConsumerPolicy } from './core/session.js';
export { HeraldError } from './core/errors.js';
export type { HeraldErrorCode } from './core/errors.js';
export type { Logger, LogLevel } from './server/logger.js';
export { createLogger } from './server/logger.js';
