// The benchmark's full-GC hook for the Node servers it starts (bench only: the servers themselves have
// none). Started with --expose-gc and an IPC channel, a server answers the message 'gc' by collecting
// twice (the second pass frees what the first one's finalisers released) and replying 'gc-done'; the
// message 'memory' is answered with process.memoryUsage() (heap beside RSS, bench/scale.mjs), and
// {snapshot: path} by a heap snapshot written there (bench/heap-diff.mjs), then {snapshot: path}.
import { writeHeapSnapshot } from 'node:v8';

export function installGcHook() {
  if (typeof process.send !== 'function') return;
  process.on('message', (message) => {
    if (message === 'memory') return process.send({ memory: process.memoryUsage() });
    if (typeof message?.snapshot === 'string') return process.send({ snapshot: writeHeapSnapshot(message.snapshot) });
    if (message !== 'gc') return;
    globalThis.gc?.();
    globalThis.gc?.();
    process.send(globalThis.gc ? 'gc-done' : 'gc-unavailable');
  });
  // The IPC channel must not keep a server alive once the benchmark is gone.
  process.on('disconnect', () => process.exit(0));
}
