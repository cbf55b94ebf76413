import { after } from 'node:test';
import { RedisEngine } from '../../src/engines/redis/redis-engine.js';
import { runEngineContract } from '../contracts/engine.contract.js';
import { startRedis } from '../helpers/redis.js';

const redis = await startRedis({ after: (fn) => after(fn) });
let engines = 0;

runEngineContract('RedisEngine', {
  async make(historySize) {
    // Each engine its own key space: the contract's channels repeat from test to test.
    const engine = new RedisEngine({ url: redis.url, historySize, keyPrefix: `contract${++engines}:` });
    await engine.ready();
    return engine;
  },
});
