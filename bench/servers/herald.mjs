// Herald on the embedded engine, as `herald serve` runs it. Prints "ready <port>".
import { createHerald } from '../../dist/index.js';

// Load from one address: the per-address and connection limits would refuse the benchmark's clients.
const herald = createHerald({ timeoutMs: 30_000, maxIntervalMs: 30_000, maxSessionsPerAddress: 0, maxConnections: 0, maxMessageRate: 0 });
const { port } = await herald.listen(Number(process.argv[2] ?? 0), '127.0.0.1');
console.log(`ready ${port}`);
process.on('SIGTERM', () => herald.close().then(() => process.exit(0)));
