// Between the two floors: Node's HTTP server parses the upgrade (as Herald's does), the handshake is
// answered by hand and the socket kept bare, without `ws` — what `ws`'s objects add per connection
// beside node-floor.mjs. Only for the benchmark's own clients. Prints "ready <port>".
//
//   node --expose-gc bench/servers/http-floor.mjs <port>
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { installGcHook } from './gc-hook.mjs';

installGcHook();
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
// Subscribers by channel (the path after /sub): a publish reaches only its channel's.
const sockets = new Map();
const SUBSCRIBERS = Symbol('subscribers');
let seq = 0;

function frame(text) {
  const payload = Buffer.from(text);
  const header = payload.length < 126 ? Buffer.from([0x81, payload.length]) : Buffer.from([0x81, 126, payload.length >> 8, payload.length & 255]);
  return Buffer.concat([header, payload]);
}

function ignore() {}
function onClose() {
  this[SUBSCRIBERS].delete(this);
}

const server = createServer((req, res) => {
  if (req.method !== 'POST' || !req.url.startsWith('/pub/')) return res.writeHead(404).end();
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const id = String(++seq);
    const bytes = frame(`{"id":"${id}","channel":${JSON.stringify(req.url.slice(4))},"data":${Buffer.concat(chunks).toString()}}`);
    for (const socket of sockets.get(req.url.slice(4)) ?? []) socket.write(bytes);
    res.writeHead(202, { 'Content-Type': 'application/json' }).end(`{"id":"${id}"}`);
  });
});
server.on('upgrade', (req, socket) => {
  const accept = createHash('sha1').update(req.headers['sec-websocket-key'] + GUID).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  socket.setNoDelay(true);
  socket.on('data', ignore);
  socket.on('error', ignore);
  socket.on('close', onClose);
  const channel = req.url.slice(4);
  socket[SUBSCRIBERS] = sockets.get(channel) ?? sockets.set(channel, new Set()).get(channel);
  socket[SUBSCRIBERS].add(socket);
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', 65535, () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
