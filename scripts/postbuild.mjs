#!/usr/bin/env node
// Makes the compiled CLI entry executable (tsc does not keep modes).
import { chmodSync, existsSync } from 'node:fs';
const cli = new URL('../dist/engine/cli/main.js', import.meta.url).pathname;
if (existsSync(cli)) chmodSync(cli, 0o755);
