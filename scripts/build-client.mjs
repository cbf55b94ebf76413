// Bundles the browser client (src/client) into dist/herald.js, served by Herald at /herald.js.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/client/browser.ts'],
  bundle: true,
  minify: true,
  format: 'iife',
  // Private fields and `??` stay as written: every browser with Web Locks has them.
  target: 'es2022',
  outfile: 'dist/herald.js',
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
});
