// Browser client weight, Herald against its peers in one run: what a page downloads to talk to
// the server (minified, then gzip -9). CometD ships no bundle, so it is bundled here the way an
// app would (esbuild, minified, its core with every transport). Run: npm run build, then
// (cd bench && npm ci && node client-size.mjs).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const require = createRequire(import.meta.url);

async function cometdBundle() {
  const result = await build({
    stdin: { contents: "import * as cometd from 'cometd'; globalThis.CometD = cometd;", resolveDir: new URL('..', import.meta.url).pathname },
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2022',
    write: false,
    legalComments: 'none',
  });
  return Buffer.from(result.outputFiles[0].contents);
}

const clients = [
  ['Herald (dist/herald.js)', readFileSync(new URL('../dist/herald.js', import.meta.url))],
  ['Faye 1.4 (faye-browser-min.js)', readFileSync(require.resolve('faye/client/faye-browser-min.js'))],
  ['Socket.IO 4 (socket.io.min.js)', readFileSync(new URL('node_modules/socket.io-client/dist/socket.io.min.js', import.meta.url))],
  ['CometD 9 (cometd.js bundled)', await cometdBundle()],
];

const herald = gzipSync(clients[0][1], { level: 9 }).length;
console.log('client                            minified   gzipped   gzipped vs Herald');
for (const [name, code] of clients) {
  const gzipped = gzipSync(code, { level: 9 }).length;
  console.log(`${name.padEnd(34)}${String(code.length).padStart(8)}  ${String(gzipped).padStart(8)}   ${(gzipped / herald).toFixed(2)}×`);
}
