/**
 * @module
 * Writing a delivery's bytes to a socket for the price of the system call. Fan-out writes the same
 * few hundred bytes to thousands of sockets, one write each; through `socket.write` each pays for
 * Node's stream machinery (state checks, a write request, callbacks, the idle-timer refresh), which
 * measured here costs about as much again as the `write(2)` itself. When nothing is waiting in the
 * socket's stream, the bytes can go straight to its libuv handle instead — the call the stream
 * itself ends in — and the kernel almost always takes them at once.
 *
 * Order: libuv writes a handle's requests in the order they are made, whether they come from here
 * or from the stream; and this path is taken only when the stream holds nothing back (not corked,
 * nothing buffered), so no byte given to `socket.write` earlier is overtaken.
 *
 * Back-pressure: when the kernel does not take everything, libuv keeps the rest — outside the
 * stream's `writableLength`. Those bytes are counted here until libuv reports them written, and
 * `bufferedBytes` adds them, so a reader that stops reading is still caught.
 *
 * Anything unusual (TLS, a handle of another kind, a Node without the binding, an error) takes
 * `socket.write`, which behaves as it always did.
 */
import type { Duplex } from 'node:stream';

/** The libuv stream binding's write request, and the flag telling whether the last write was left to libuv. */
interface StreamBinding {
  readonly WriteWrap: new () => WriteRequest;
  readonly streamBaseState: Int32Array;
  readonly kLastWriteWasAsync: number;
}

interface WriteRequest {
  handle: unknown;
  oncomplete: (this: WriteRequest, status: number) => void;
  async: boolean;
  /** Set while libuv holds the request: whose bytes, and how many. */
  socket: DirectSocket | undefined;
  bytes: number;
  /** The bytes libuv still reads from: kept reachable until it is done (nothing else holds them). */
  data: Buffer | undefined;
}

interface StreamHandle {
  writeBuffer(request: WriteRequest, data: Buffer): number;
}

/** Bytes handed to libuv directly that it has not written yet, per socket. */
const pendingBytes = Symbol('herald.directPendingBytes');
type DirectSocket = Duplex & { [pendingBytes]?: number; _handle?: StreamHandle | null; encrypted?: boolean };

const binding = loadBinding();

function loadBinding(): StreamBinding | undefined {
  // Off on request, and where asking for the binding would print a deprecation warning.
  const pending = process.execArgv.includes('--pending-deprecation') || (process.env.NODE_OPTIONS ?? '').includes('--pending-deprecation');
  if (process.env.HERALD_DIRECT_WRITES === 'off' || pending) return undefined;
  try {
    // The binding Node's own net.Socket writes through; deprecated for applications (DEP0111) but
    // still offered. When a Node release withdraws it, every write takes socket.write.
    const loaded = (process as unknown as { binding(name: string): Partial<StreamBinding> }).binding('stream_wrap');
    return typeof loaded.WriteWrap === 'function' && loaded.streamBaseState instanceof Int32Array && typeof loaded.kLastWriteWasAsync === 'number'
      ? (loaded as StreamBinding)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Whether writes may skip the stream here (the tests check the path they mean to prove is the one taken). */
export const directWritesAvailable = binding !== undefined;

/**
 * A request the kernel took whole never reaches libuv's queue (Node attaches its native half only
 * when a write must wait), so one object serves every such write: a delivery to thousands of
 * sockets allocates no request per socket. A request libuv keeps is left to it.
 */
let spareRequest: WriteRequest | undefined;

function newRequest(loaded: StreamBinding): WriteRequest {
  const request = new loaded.WriteWrap();
  request.handle = null;
  request.oncomplete = directWriteDone;
  request.async = false;
  request.socket = undefined;
  request.bytes = 0;
  request.data = undefined;
  return request;
}

/** libuv finished a write it had to queue (`this` is its request). */
function directWriteDone(this: WriteRequest, status: number): void {
  const socket = this.socket!;
  this.data = undefined;
  socket[pendingBytes] = (socket[pendingBytes] ?? 0) - this.bytes;
  if (status < 0) socket.destroy();
}

/** Writes `data` to `socket`, straight to its handle when that keeps order, else through the stream. */
export function writeToSocket(socket: Duplex, data: Buffer): void {
  const direct = socket as DirectSocket;
  const handle = direct._handle;
  if (binding === undefined || handle == null || direct.encrypted === true || typeof handle.writeBuffer !== 'function' || direct.writableLength > 0 || direct.writableCorked > 0 || !direct.writable) {
    socket.write(data);
    return;
  }
  const request = spareRequest ?? newRequest(binding);
  spareRequest = undefined;
  request.handle = handle;
  request.socket = direct;
  request.bytes = data.length;
  const status = handle.writeBuffer(request, data);
  if (status < 0) {
    // EPIPE, ECONNRESET…: the connection is gone; its close runs the usual clean-up. (The request
    // is not used again: a failure after a partial write may have given it a native half.)
    socket.destroy();
    return;
  }
  if (binding.streamBaseState[binding.kLastWriteWasAsync] !== 0) {
    // libuv holds the rest, and the request until it reports it written.
    request.data = data;
    direct[pendingBytes] = (direct[pendingBytes] ?? 0) + data.length;
    return;
  }
  // Taken whole by the kernel: no callback will come, and the request is free again.
  request.handle = null;
  request.socket = undefined;
  spareRequest = request;
}

/** Bytes written directly that libuv still holds (outside the stream's `writableLength`). */
export function directBytesPending(socket: Duplex): number {
  return (socket as DirectSocket)[pendingBytes] ?? 0;
}

/** What the socket holds that the client has not taken yet: the stream's buffer and the direct writes libuv still holds. */
export function bufferedBytes(socket: Duplex): number {
  return socket.writableLength + directBytesPending(socket);
}
