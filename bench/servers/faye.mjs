// Faye 1.4.3's Node server with its memory engine. Prints "ready <port>".
import { createServer } from 'node:http';
import faye from 'faye';
import { installGcHook } from './gc-hook.mjs';

installGcHook();

const bayeux = new faye.NodeAdapter({ mount: '/bayeux', timeout: 30 });
const server = createServer();
bayeux.attach(server);
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
