#!/usr/bin/env node
// Server CPU per warm `POST /pub/{channel}` with no subscriber: the publish request's own cost. Starts a
// fresh server (Herald as compare.mjs starts it, or with --bare a plain Node HTTP server that reads
// the JSON body and answers JSON: the floor), warms it with 3,000 POSTs, then sends N kept-alive POSTs
// one after another and reads the server's utime + stime from /proc. Extra arguments go to node
// (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof, then bench/profile-summary.mjs).
//
//   node bench/publish-cpu.mjs [--bare] [--n 20000] [--server servers/herald.mjs] [-- node args…]
//
// --server: another Herald start script (e.g. a copy of servers/herald.mjs importing an older build),
// to compare two builds one run after the other.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { bare: { type: 'boolean', default: false }, n: { type: 'string', default: '20000' }, server: { type: 'string' } } });
const N = Number(values.n);
const BARE = `import { createServer } from 'node:http';
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const data = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const body = JSON.stringify({ id: '1', channel: req.url.slice(4), subscribers: 0, seq: data.seq });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
  });
});
server.listen(0, '127.0.0.1', () => console.log('ready ' + server.address().port));`;
const args = values.bare ? [...positionals, '--input-type=module', '-e', BARE] : [...positionals, values.server ?? new URL('servers/herald.mjs', import.meta.url).pathname, '0'];
const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve) => child.stdout.on('data', (chunk) => { const ready = /ready (\d+)/.exec(String(chunk)); if (ready) resolve(Number(ready[1])); }));
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
/** The server's utime + stime, µs (clock ticks of 10 ms). */
const cpu = () => { const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(fields[11]) + Number(fields[12])) * 10_000; };
let seq = 0;
function post() {
  const body = JSON.stringify({ seq: seq++, sent: Date.now(), text: 'hello from the burst scenario' });
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/pub/bench/burst', method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}
for (let i = 0; i < 3000; i++) await post();
const before = cpu();
const started = process.hrtime.bigint();
for (let i = 0; i < N; i++) await post();
const used = cpu() - before;
const wall = Number(process.hrtime.bigint() - started) / 1000;
console.log(`${values.bare ? 'bare Node' : 'Herald'}: ${N} POSTs, server CPU ${(used / N).toFixed(1)} µs / POST, wall ${(wall / N).toFixed(1)} µs / POST`);
agent.destroy();
child.kill('SIGTERM');
await new Promise((resolve) => child.on('exit', resolve));
