/** Folders are layers and imports go one way (DESIGN.md, STYLE.md §2). Checked from every source file's imports. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** For each layer: the src layers it may import, and the node built-ins it may use (null = any). */
const RULES: Record<string, { layers: string[]; builtins: string[] | null; files?: string[] }> = {
  core: { layers: ['core'], builtins: ['node:crypto', 'node:events'] },
  bayeux: { layers: ['core', 'bayeux'], builtins: [] },
  transports: { layers: ['core', 'transports'], builtins: null },
  // The REST front door shares the HTTP plumbing of the transports (body reading, replies).
  rest: { layers: ['core', 'rest', 'transports'], builtins: null },
  // Engines implement core's Engine over a store; they know nothing of protocols or HTTP.
  engines: { layers: ['core', 'engines'], builtins: [] },
  server: { layers: ['core', 'bayeux', 'transports', 'rest', 'engines', 'server'], builtins: null },
  cli: { layers: ['server', 'cli', 'client'], builtins: null, files: ['core/errors.ts'] },
  // Runs in browsers: no node built-ins, no packages; of the core only the channel grammar.
  client: { layers: ['client'], builtins: [], files: ['core/channel.ts'] },
  '.': { layers: ['core', 'bayeux', 'transports', 'engines', 'server'], builtins: [] },
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

test('every import respects the layer table', () => {
  const violations: string[] = [];
  const files = sourceFiles(SRC);
  assert.ok(files.length > 20, 'found the sources');
  for (const file of files) {
    const rel = relative(SRC, file);
    const layer = rel.includes('/') ? rel.split('/')[0]! : '.';
    const rule = RULES[layer];
    if (rule === undefined) {
      violations.push(`${rel}: folder ${layer} has no rule`);
      continue;
    }
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/(?:import|export)\s[^'"]*?from\s+'([^']+)'|import\s*\(?\s*'([^']+)'/g)) {
      const specifier = (match[1] ?? match[2])!;
      if (specifier.startsWith('.')) {
        const target = relative(SRC, resolve(dirname(file), specifier)).replace(/\.js$/, '.ts');
        const targetLayer = target.includes('/') ? target.split('/')[0]! : '.';
        if (!rule.layers.includes(targetLayer) && !(rule.files ?? []).includes(target)) violations.push(`${rel} imports ${target}`);
      } else if (specifier.startsWith('node:')) {
        if (rule.builtins !== null && !rule.builtins.includes(specifier)) violations.push(`${rel} uses ${specifier}`);
      } else if (layer === 'core' || layer === 'bayeux' || layer === 'client') {
        violations.push(`${rel} depends on package ${specifier}`);
      }
    }
  }
  assert.deepEqual(violations, []);
});
