// Herald on the embedded engine, as `herald serve` runs it: the same option parser, so extra
// `herald serve` flags given after the port pass through (compare.mjs --herald-args). Prints "ready <port>".
//
//   node --expose-gc bench/servers/herald.mjs <port> [herald serve flags…]
import { createHerald } from '../../dist/index.js';
import { resolveServeConfig } from '../../dist/server/config.js';
import { createLogger } from '../../dist/server/logger.js';
import { installGcHook } from './gc-hook.mjs';

installGcHook();
// Load from a few addresses: the per-address, connection and rate limits would refuse the benchmark's clients.
const BENCH_DEFAULTS = ['--demo', 'off', '--log-level', 'warn', '--timeout', '30s', '--max-interval', '30s', '--max-sessions-per-ip', '0', '--max-connections', '0', '--max-rate', '0'];
const [port = '0', ...extra] = process.argv.slice(2);
let config;
try {
  config = resolveServeConfig([...BENCH_DEFAULTS, '--port', port, ...extra], {});
} catch (error) {
  console.error(`herald.mjs: ${error.message}`); // e.g. a flag this build does not have yet
  process.exit(1);
}
const herald = createHerald({ ...config.herald, logger: createLogger(config.logLevel) });
const address = await herald.listen(config.port, config.host);
console.log(`ready ${address.port}`);
process.on('SIGTERM', () => herald.close().then(() => process.exit(0)));
