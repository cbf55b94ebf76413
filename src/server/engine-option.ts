/**
 * @module
 * The engine the `engine` option names: an instance as is, `memory`, or a Redis URL.
 */
import type { Clock } from '../core/clock.js';
import type { Engine } from '../core/engine.js';
import { HeraldError } from '../core/errors.js';
import type { MemoryBudget } from '../core/memory-budget.js';
import { MemoryEngine } from '../core/memory-engine.js';
import { RedisEngine } from '../engines/redis/redis-engine.js';
import type { Logger } from './logger.js';
import type { Settings } from './options.js';

export function buildEngine(engine: Engine | string, config: Settings, logger: Logger, clock: Clock | undefined, memoryBudget: MemoryBudget): Engine {
  if (typeof engine !== 'string') return engine;
  const history = { historySize: config.historySize, historyTtlMs: config.historyTtlMs };
  // Redis keeps its history out of this process: only queues count against the budget then.
  if (engine === 'memory') return new MemoryEngine({ ...history, clock, memoryBudget, idempotencyMaxKeys: config.idempotencyMaxKeys });
  if (/^rediss?:\/\//.test(engine)) {
    return new RedisEngine({ url: engine, ...history, onError: (error, context) => logger.warn('redis', { context, error: (error as Error).message ?? String(error) }) });
  }
  throw new HeraldError('HERALD_ERR_INVALID_OPTION', 'engine must be an Engine, "memory", or a redis:// URL');
}
