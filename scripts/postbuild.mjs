#!/usr/bin/env node
// Makes the compiled CLI entry executable (tsc does not keep modes), and copies the data
// files compiled modules read from beside themselves (tsc copies only .ts output).
import { chmodSync, copyFileSync, existsSync } from 'node:fs';
const cli = new URL('../dist/engine/cli/main.js', import.meta.url).pathname;
if (existsSync(cli)) chmodSync(cli, 0o755);
for (const file of ['engine/guide/glossary.yaml']) {
  copyFileSync(new URL(`../${file}`, import.meta.url), new URL(`../dist/${file}`, import.meta.url));
}
