#!/usr/bin/env node
// Runs one command in the kernel lab (test/lab/kernel-lab.ts) and exits with its code, its
// output printed as it comes. Any test file runs there the way npm test runs it here:
//   node scripts/in-kernel-lab.mjs node scripts/run-tests.mjs test/host/
//   node scripts/in-kernel-lab.mjs --suite bullseye --cpus 1 node scripts/run-tests.mjs test/probe/drops-kernel
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    suite: { type: 'string', default: 'bookworm' },
    cpus: { type: 'string', default: '2' },
    memory: { type: 'string', default: '3072' },
    timeout: { type: 'string', default: '3600' },
  },
});
if (positionals.length === 0) {
  console.error('usage: node scripts/in-kernel-lab.mjs [--suite bookworm|bullseye|trixie] [--cpus N] [--memory MB] [--timeout S] <command...>');
  process.exit(2);
}
const { runInKernelLab } = await import(new URL('../dist/test/lab/kernel-lab.js', import.meta.url).href);
const r = await runInKernelLab(positionals.join(' '), {
  suite: values.suite,
  cpus: Number(values.cpus),
  memoryMb: Number(values.memory),
  timeoutMs: Number(values.timeout) * 1000,
  onLine: (line) => console.log(line),
});
console.error(`kernel lab ${r.release ?? values.suite}: exit ${r.code ?? 'none (timed out or crashed)'} in ${Math.round(r.ms / 1000)} s`);
if (r.code === null) console.error(r.console.split('\n').slice(-30).join('\n'));
process.exit(r.code ?? 1);
