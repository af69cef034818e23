// Startup and attach costs, ebpfnet beside bpftrace doing the same job, on this machine.
//   npm run build && node dist/test/bench/startup.js
// Prints medians of repeated runs; BENCHMARKS.md keeps the figures.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { closeAll } from '../../engine/native/guard.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { CLI } from '../helpers/cli.js';

const RUNS = Number(process.env.RUNS ?? 7);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Wall time of a whole command, ms. */
function timeCommand(argv: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}`);
  return performance.now() - t0;
}

function commandMedian(argv: string[]): number {
  timeCommand(argv); // warm the page cache
  return median(Array.from({ length: RUNS }, () => timeCommand(argv)));
}

/** In-process open+load and attach of a tracepoint program through our addon. */
function nativeLoadAttach(): { loadMs: number; attachMs: number } {
  const loads: number[] = [];
  const attaches: number[] = [];
  for (let i = 0; i < RUNS + 1; i++) {
    const t0 = performance.now();
    const obj = BpfObject.open(bpfObjectPath('selftest'), { globals: { targ_tgid: process.pid, targ_tid: process.pid } });
    obj.load();
    const loaded = performance.now();
    const link = obj.program('st_tracepoint').attach();
    const attached = performance.now();
    link.detach();
    obj.close();
    if (i === 0) continue; // warm-up
    loads.push(loaded - t0);
    attaches.push(attached - loaded);
  }
  return { loadMs: median(loads), attachMs: median(attaches) };
}

const rows: Array<[string, string, string]> = [];
mkdirSync('/tmp/ebpfnet-bench', { recursive: true });
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

rows.push(['node -e 0 (the runtime alone)', fmt(commandMedian([process.execPath, '-e', '0'])), '']);
rows.push(['ebpfnet --version', fmt(commandMedian([process.execPath, CLI, '--version'])), '']);
// The same job on both sides: count kfree_skb drops for 100 ms, print, exit.
const WINDOW_MS = 100;
rows.push([
  `kfree_skb drop count, ${WINDOW_MS} ms window: start → attached → printed`,
  `ebpfnet probe run drops.kernel: ${fmt(commandMedian([process.execPath, CLI, 'probe', 'run', 'drops.kernel', '-d', `${WINDOW_MS}ms`, '--out', '/tmp/ebpfnet-bench']))}`,
  `bpftrace one-liner: ${fmt(commandMedian(['bpftrace', '-e', `tracepoint:skb:kfree_skb { @[args->reason] = count(); } interval:ms:${WINDOW_MS} { exit(); }`]))}`,
]);
const native = nativeLoadAttach();
rows.push(['in-process load (libbpf, CO-RE object)', fmt(native.loadMs), '']);
rows.push(['in-process attach (tracepoint)', fmt(native.attachMs), '']);
closeAll();

const width = Math.max(...rows.map((r) => r[0].length));
console.log(`median of ${RUNS} runs on ${process.version}`);
for (const [what, a, b] of rows) console.log(`${what.padEnd(width)}  ${a}${b ? `   | ${b}` : ''}`);
