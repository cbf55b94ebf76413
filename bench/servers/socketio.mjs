// Socket.IO 4.8 (WebSocket only, no per-message deflate) with Herald's and Nchan's plain-HTTP shape:
// a client emits `subscribe` with a room name and is acknowledged once it has joined; `POST /pub/<room>`
// with a JSON body emits it to the room `/<room>` as a `message` event. Prints "ready <port>".
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { installGcHook } from './gc-hook.mjs';

installGcHook();
const server = createServer((req, res) => {
  // The room is the channel as the clients name it: `POST /pub/bench/room` → room `/bench/room`.
  const room = req.url.startsWith('/pub/') ? decodeURIComponent(req.url.slice('/pub'.length)) : '';
  if (req.method !== 'POST' || room.length < 2) {
    res.writeHead(404).end();
    return;
  }
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    let data;
    try {
      data = JSON.parse(body);
    } catch {
      res.writeHead(400).end('body must be JSON');
      return;
    }
    io.to(room).emit('message', data);
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ room, subscribers: io.sockets.adapter.rooms.get(room)?.size ?? 0 }));
  });
});
const io = new Server(server, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
io.on('connection', (socket) => {
  socket.on('subscribe', (room, ack) => {
    socket.join(String(room));
    if (typeof ack === 'function') ack(true);
  });
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
