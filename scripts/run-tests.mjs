#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's built-in runner.
// Test files are listed here rather than globbed by `node --test`, whose argument
// handling differs between Node versions. Extra arguments filter by path substring.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';

const root = new URL('..', import.meta.url).pathname;
const testDir = join(root, 'dist', 'test');

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : path.endsWith('.test.js') ? [path] : [];
  });
}

const filters = process.argv.slice(2);
// `*.lab.js` files need what only the kernel lab has (KVM, vhost-net, openvswitch.ko): never
// listed, they run when named by path (test/lab/kernel-lab.test.ts names them there).
const named = filters.filter((p) => p.endsWith('.lab.js') && existsSync(join(root, p))).map((p) => join(root, p));
const files = [
  ...walk(testDir).filter((f) => filters.length === 0 || filters.some((p) => relative(root, f).includes(p))),
  ...named,
].sort();
if (files.length === 0) {
  console.error(`no test files under ${testDir}: run \`npm run build\` first`);
  process.exit(1);
}
// Every parser's output is checked against its probe's declared data: a mismatch fails the
// probe (EBPFNET_STRICT_DATA, also in CLIs the tests start) or the parse a test calls.
const env = { ...process.env, EBPFNET_STRICT_DATA: '1' };
const strictData = pathToFileURL(join(testDir, 'helpers', 'strict-data.js')).href;
// Tests share the host's network namespaces and BPF state: run files one at a time.
const result = spawnSync(process.execPath, ['--import', strictData, '--test', '--test-concurrency=1', ...files], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
