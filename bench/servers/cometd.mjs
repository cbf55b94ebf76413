// cometd-nodejs-server 1.2.1 (long-polling only). Prints "ready <port>".
import { createServer } from 'node:http';
import cometd from 'cometd-nodejs-server';
import { installGcHook } from './gc-hook.mjs';

installGcHook();

const cometdServer = cometd.createCometDServer({ timeout: 30_000, maxInterval: 30_000 });
const server = createServer(cometdServer.handle);
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
