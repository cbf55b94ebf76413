// Herald on the embedded engine, as `herald serve` runs it. Prints "ready <port>".
import { createHerald } from '../../dist/index.js';

const herald = createHerald({ timeoutMs: 30_000, maxIntervalMs: 30_000 });
const { port } = await herald.listen(Number(process.argv[2] ?? 0), '127.0.0.1');
console.log(`ready ${port}`);
process.on('SIGTERM', () => herald.close().then(() => process.exit(0)));
