// What the hand-made WebSocket floors (http-floor.mjs, net-floor.mjs) share: the 101 for a key, a
// text frame, and subscribers kept by channel. Only for the benchmark's own clients.
import { createHash } from 'node:crypto';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const SUBSCRIBERS = Symbol('subscribers');
/** Subscribers by channel (the path after /sub): a publish reaches only its channel's. */
const byChannel = new Map();

export function switchingProtocols(key) {
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`;
}

/** A server-to-client text frame (payloads under 64 KiB: the benchmark's are small). */
export function textFrame(text) {
  const payload = Buffer.from(text);
  const header = payload.length < 126 ? Buffer.from([0x81, payload.length]) : Buffer.from([0x81, 126, payload.length >> 8, payload.length & 255]);
  return Buffer.concat([header, payload]);
}

export function subscribe(socket, channel) {
  socket[SUBSCRIBERS] = byChannel.get(channel) ?? byChannel.set(channel, new Set()).get(channel);
  socket[SUBSCRIBERS].add(socket);
}

export function unsubscribe(socket) {
  socket[SUBSCRIBERS]?.delete(socket);
}

/** Writes the channel's message `{id, channel, data}` (data: JSON text) to each of its subscribers. */
export function publish(id, channel, dataJson) {
  const bytes = textFrame(`{"id":"${id}","channel":${JSON.stringify(channel)},"data":${dataJson}}`);
  for (const socket of byChannel.get(channel) ?? []) socket.write(bytes);
}
