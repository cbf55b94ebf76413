/**
 * @module
 * How Herald's own listening server takes connections: the accept backlog, and what it answers a
 * request Node could not read.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { LimitCounters } from '../core/limits.js';

/**
 * How many connections the kernel may hold accepted-but-not-yet-taken for the listening socket.
 * Node's default (511) overflows when thousands of clients reconnect at once (after a deploy):
 * each dropped SYN costs its client a retransmission, a second or more. The kernel caps it at
 * net.core.somaxconn (4096 on current kernels).
 */
export const LISTEN_BACKLOG = 65_535;

/**
 * What Node itself would answer a request it could not take (with a listener, it answers none):
 * 408 for one too slow to arrive, counted; 431 for headers too large; else 400.
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex, counters: LimitCounters): void {
  const timedOut = error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  if (timedOut) counters.hit('request_timeout');
  // As Node does: answer only a connection that has not been answered anything yet, then cut it.
  if (socket.writable && (socket as Socket).bytesWritten === 0) {
    const status = timedOut ? '408 Request Timeout' : error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }
  socket.destroy();
}
