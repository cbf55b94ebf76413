/** The deploy guide: docs/deploy.md names every recipe in docs/deploy/, and the README links it. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEPLOY, ROOT } from '../helpers/recipes.js';

test('docs/deploy.md names every file in docs/deploy/, and README links it', () => {
  const guide = readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8');
  for (const file of readdirSync(DEPLOY)) assert.ok(guide.includes(file), `docs/deploy.md mentions ${file}`);
  assert.match(readFileSync(join(ROOT, 'README.md'), 'utf8'), /\]\(docs\/deploy\.md\)/);
});
