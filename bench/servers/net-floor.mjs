// The floor under Node itself: a WebSocket /sub and a POST /pub on a bare `net` server, no HTTP
// parser, no `ws` — the request read as it comes (one chunk), the upgrade answered by hand, frames
// written as prebuilt buffers. What any server in Node pays per connection before doing anything of
// its own: accept, a net.Socket, one read, a SHA-1, one write. Only for the benchmark's own clients
// (it trusts every byte they send). Prints "ready <port>".
//
//   node --expose-gc bench/servers/net-floor.mjs <port>
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
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

function onData(chunk) {
  const socket = this;
  if (socket.upgraded) return; // client frames (pongs, closes): the floor reads nothing
  const text = chunk.toString('latin1');
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd < 0) return socket.destroy();
  if (text.startsWith('GET ')) {
    const key = /\r\nsec-websocket-key:\s*(\S+)/i.exec(text)?.[1];
    if (key === undefined) return socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.upgraded = true;
    const channel = text.slice(8, text.indexOf(' ', 4));
    socket[SUBSCRIBERS] = sockets.get(channel) ?? sockets.set(channel, new Set()).get(channel);
    socket[SUBSCRIBERS].add(socket);
    return;
  }
  // POST /pub/<channel>: the benchmark's publisher sends its head and small body together.
  const path = text.slice(5, text.indexOf(' ', 5));
  const body = text.slice(headEnd + 4);
  const id = String(++seq);
  const bytes = frame(`{"id":"${id}","channel":${JSON.stringify(path.slice(4))},"data":${body}}`);
  for (const subscriber of sockets.get(path.slice(4)) ?? []) subscriber.write(bytes);
  const reply = `{"id":"${id}"}`;
  socket.write(`HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: ${reply.length}\r\n\r\n${reply}`);
}

function onClose() {
  this[SUBSCRIBERS]?.delete(this);
}

const server = createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('data', onData);
  socket.on('close', onClose);
  socket.on('error', () => {});
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', 65535, () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
