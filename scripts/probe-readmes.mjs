#!/usr/bin/env node
// Writes each probe's README.md (probes/<id>/README.md) from its definition and the files of its
// folder (engine/probe/readme.ts); test/probe/readmes.test.ts fails when one is stale.
// Run after `npm run build`: it reads the compiled definitions in dist/.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const { probeRegistry } = await import(join(root, 'dist', 'probes', 'index.js'));
const { probeFolderFiles, probeReadme } = await import(join(root, 'dist', 'engine', 'probe', 'readme.js'));

let written = 0;
const registry = probeRegistry();
for (const id of registry.ids()) {
  const dir = join(root, 'probes', id);
  const text = probeReadme(registry.get(id), probeFolderFiles(dir));
  const path = join(dir, 'README.md');
  let old = '';
  try {
    old = readFileSync(path, 'utf8');
  } catch {
    /* a new probe */
  }
  if (old === text) continue;
  writeFileSync(path, text);
  written++;
}
console.log(`readmes: ${written} of ${registry.ids().length} probe READMEs written`);
