// The floor under Node itself: a WebSocket /sub and a POST /pub on a bare `net` server, no HTTP
// parser, no `ws` — the request read as it comes (one chunk), the upgrade answered by hand, frames
// written as prebuilt buffers. What any server in Node pays per connection before doing anything of
// its own: accept, a net.Socket, one read, a SHA-1, one write. Only for the benchmark's own clients
// (it trusts every byte they send). Prints "ready <port>".
//
//   node --expose-gc bench/servers/net-floor.mjs <port>
import { createServer } from 'node:net';
import { publish, subscribe, switchingProtocols, unsubscribe } from './floor-ws.mjs';
import { installGcHook } from './gc-hook.mjs';

installGcHook();
let seq = 0;

function onData(chunk) {
  const socket = this;
  if (socket.upgraded) return; // client frames (pongs, closes): the floor reads nothing
  const text = chunk.toString('latin1');
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd < 0) return socket.destroy();
  if (text.startsWith('GET ')) {
    const key = /\r\nsec-websocket-key:\s*(\S+)/i.exec(text)?.[1];
    if (key === undefined) return socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    socket.write(switchingProtocols(key));
    socket.upgraded = true;
    subscribe(socket, text.slice(8, text.indexOf(' ', 4)));
    return;
  }
  // POST /pub/<channel>: the benchmark's publisher sends its head and small body together.
  const path = text.slice(5, text.indexOf(' ', 5));
  const id = String(++seq);
  publish(id, path.slice(4), text.slice(headEnd + 4));
  const reply = `{"id":"${id}"}`;
  socket.write(`HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: ${reply.length}\r\n\r\n${reply}`);
}

function onClose() {
  unsubscribe(this);
}

const server = createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('data', onData);
  socket.on('close', onClose);
  socket.on('error', () => {});
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', 65535, () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
