// The floor under Herald's set-up cost: what Node's HTTP parser, `ws`'s upgrade and the syscalls cost
// with nothing else — a /sub WebSocket or SSE stream kept in a set, a POST /pub written to each as
// Herald frames it ({id, channel, data}). No channels, sessions, access or metrics. Prints "ready <port>".
//
//   node --expose-gc bench/servers/node-floor.mjs <port>
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { installGcHook } from './gc-hook.mjs';

installGcHook();
// Subscribers by channel (the path after /sub): a publish reaches only its channel's.
const sockets = new Map();
const streams = new Map();
const setOf = (map, channel) => map.get(channel) ?? map.set(channel, new Set()).get(channel);
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
let seq = 0;
const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url.startsWith('/pub/')) {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const id = String(++seq);
      const text = `{"id":"${id}","channel":${JSON.stringify(req.url.slice(4))},"data":${Buffer.concat(chunks).toString()}}`;
      for (const ws of sockets.get(req.url.slice(4)) ?? []) ws.send(text);
      const event = `id: ${id}\ndata: ${text}\n\n`;
      for (const stream of streams.get(req.url.slice(4)) ?? []) stream.write(event);
      res.writeHead(202, { 'Content-Type': 'application/json' }).end(`{"id":"${id}"}`);
    });
  } else if (req.url.startsWith('/sub/')) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
    res.write(': ok\n\n');
    const subscribers = setOf(streams, req.url.slice(4));
    subscribers.add(res);
    res.on('close', () => subscribers.delete(res));
  } else res.writeHead(404).end();
});
server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    const subscribers = setOf(sockets, req.url.slice(4));
    subscribers.add(ws);
    ws.on('close', () => subscribers.delete(ws));
  });
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', 65535, () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
