// Between the two floors: Node's HTTP server parses the upgrade (as Herald's does), the handshake is
// answered by hand and the socket kept bare, without `ws` — what `ws`'s objects add per connection
// beside node-floor.mjs. Only for the benchmark's own clients. Prints "ready <port>".
//
//   node --expose-gc bench/servers/http-floor.mjs <port>
import { createServer } from 'node:http';
import { publish, subscribe, switchingProtocols, unsubscribe } from './floor-ws.mjs';
import { installGcHook } from './gc-hook.mjs';

installGcHook();
let seq = 0;

function ignore() {}
function onClose() {
  unsubscribe(this);
}

const server = createServer((req, res) => {
  if (req.method !== 'POST' || !req.url.startsWith('/pub/')) return res.writeHead(404).end();
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const id = String(++seq);
    publish(id, req.url.slice(4), Buffer.concat(chunks).toString());
    res.writeHead(202, { 'Content-Type': 'application/json' }).end(`{"id":"${id}"}`);
  });
});
server.on('upgrade', (req, socket) => {
  socket.write(switchingProtocols(req.headers['sec-websocket-key']));
  socket.setNoDelay(true);
  socket.on('data', ignore);
  socket.on('error', ignore);
  socket.on('close', onClose);
  subscribe(socket, req.url.slice(4));
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', 65535, () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
