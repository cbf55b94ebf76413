// The benchmark's full-GC hook for the Node servers it starts (bench only: the servers themselves have
// none). Started with --expose-gc and an IPC channel, a server answers the message 'gc' by collecting
// twice (the second pass frees what the first one's finalisers released) and replying 'gc-done'; the
// message 'memory' is answered with process.memoryUsage() (heap beside RSS, bench/scale.mjs), and
// {snapshot: path} by a heap snapshot written there (bench/heap-diff.mjs), then {snapshot: path};
// 'profile-start' starts the CPU profiler and {profile: path} writes what it sampled since (a profile
// of one phase, e.g. bench/held-answer.mjs --profile), then {profile: path}.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { writeHeapSnapshot } from 'node:v8';

let inspector;

export function installGcHook() {
  if (typeof process.send !== 'function') return;
  process.on('message', (message) => {
    if (message === 'memory') return process.send({ memory: process.memoryUsage() });
    if (typeof message?.snapshot === 'string') return process.send({ snapshot: writeHeapSnapshot(message.snapshot) });
    if (message === 'profile-start') {
      inspector ??= new Session();
      inspector.connect();
      inspector.post('Profiler.enable', () => inspector.post('Profiler.setSamplingInterval', { interval: 100 }, () => inspector.post('Profiler.start', () => process.send('profile-started'))));
      return;
    }
    if (typeof message?.profile === 'string') {
      return inspector.post('Profiler.stop', (error, result) => {
        writeFileSync(message.profile, JSON.stringify(result.profile));
        inspector.disconnect();
        process.send({ profile: message.profile });
      });
    }
    if (message !== 'gc') return;
    globalThis.gc?.();
    globalThis.gc?.();
    process.send(globalThis.gc ? 'gc-done' : 'gc-unavailable');
  });
  // The IPC channel must not keep a server alive once the benchmark is gone.
  process.on('disconnect', () => process.exit(0));
}
