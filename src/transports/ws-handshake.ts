/**
 * @module
 * The server's half of the WebSocket opening handshake (RFC 6455 §4.2), checked as the `ws`
 * library checks it (its handleUpgrade and completeUpgrade), with the same statuses: a request
 * that is not a GET is refused with 405; a missing or wrong `Upgrade`, `Sec-WebSocket-Key` or
 * `Sec-WebSocket-Protocol`, or a version other than 13 (or hybi's 8, framed the same), with 400.
 * No extension is ever negotiated (frames are never compressed), and of the subprotocols a
 * client offers the first is answered: a browser fails a connection that offered protocols and
 * got none back. The 101 is one string, written at once.
 */
import { hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { refuseUpgrade } from './http.js';
import { writeToSocket } from './socket-write.js';

/** RFC 6455 §1.3: appended to the client's key before hashing. */
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The base64 of 16 bytes: 22 characters and `==`. */
const KEY = /^[+/0-9A-Za-z]{22}==$/;

/** A subprotocol name is an HTTP token (RFC 7230 §3.2.6). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const SWITCHING = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ';

/**
 * Checks the upgrade request and writes the 101; true when the socket now speaks WebSocket. When
 * false, the refusal (naming the problem) is written and the socket closes, or it was already
 * gone.
 */
export function completeHandshake(req: IncomingMessage, socket: Duplex): boolean {
  if (req.method !== 'GET') return refused(socket, 405, 'a WebSocket upgrade must be a GET');
  const upgrade = req.headers.upgrade;
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') return refused(socket, 400, 'the Upgrade header must be websocket');
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !KEY.test(key)) return refused(socket, 400, 'Sec-WebSocket-Key must be the base64 of 16 bytes');
  const version = Number(req.headers['sec-websocket-version']);
  if (version !== 13 && version !== 8) {
    return refused(socket, 400, 'Sec-WebSocket-Version must be 13', 'Sec-WebSocket-Version: 13, 8\r\n');
  }
  const offered = req.headers['sec-websocket-protocol'];
  const protocol = offered === undefined ? undefined : firstProtocol(offered);
  if (protocol === null) return refused(socket, 400, 'Sec-WebSocket-Protocol must be a comma-separated list of distinct tokens');
  if (!socket.readable || !socket.writable) {
    socket.destroy();
    return false;
  }
  const accept = hash('sha1', key + GUID, 'base64');
  const head = protocol === undefined ? `${SWITCHING}${accept}\r\n\r\n` : `${SWITCHING}${accept}\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`;
  writeToSocket(socket, Buffer.from(head, 'latin1'));
  return true;
}

/** The first of the offered subprotocols; null when the header is not a list of distinct tokens (as `ws` refuses it). */
export function firstProtocol(header: string): string | null {
  const names = header.split(',');
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!.replace(/^[ \t]+|[ \t]+$/g, '');
    if (!TOKEN.test(name)) return null;
    for (let j = 0; j < i; j++) if (names[j] === name) return null;
    names[i] = name;
  }
  return names[0]!;
}

function refused(socket: Duplex, status: 400 | 405, message: string, headers = ''): false {
  refuseUpgrade(socket, status, message, headers);
  return false;
}
