// Startup and attach costs, ebpfnet beside bpftrace doing the same job, on this machine.
//   npm run build && node dist/test/bench/startup.js
// Prints medians of repeated runs; BENCHMARKS.md keeps the figures.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { closeAll } from '../../engine/native/guard.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { ensureMinimalBtf } from '../../engine/native/btf-cache.js';
import type { RawRecord } from '../../engine/probe/types.js';
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

/**
 * Command start → drops.kernel attached, from the CLI's own evidence: the `attach` capture
 * ends when the program is attached (its `at` + `durationMs`, wall clock).
 */
function startToAttached(): number {
  const started = Date.now();
  const r = spawnSync(process.execPath, [CLI, 'probe', 'run', 'drops.kernel', '-d', '100ms', '--out', '/tmp/ebpfnet-bench', '--json'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`probe run exited ${r.status}: ${r.stderr}`);
  const { bundle, evidence } = JSON.parse(r.stdout) as { bundle: string; evidence?: string };
  const dir = evidence ? join(bundle, evidence) : join(bundle, 'raw', 'probe-1', 'drops_kernel');
  const records = JSON.parse(readFileSync(join(dir, 'records.json'), 'utf8')) as RawRecord[] | { records: RawRecord[] };
  const list = Array.isArray(records) ? records : records.records;
  const attach = list.find((rec) => rec.name === 'attach');
  if (!attach) throw new Error(`no attach record in ${dir}`);
  return attach.at + attach.durationMs - started;
}

/** In-process open+load and attach of one program through our addon. */
function nativeLoadAttach(
  object: string,
  program: string,
  opts: Parameters<typeof BpfObject.open>[1],
  attach: (obj: BpfObject) => { detach(): boolean },
): { loadMs: number; attachMs: number } {
  const loads: number[] = [];
  const attaches: number[] = [];
  for (let i = 0; i < RUNS + 1; i++) {
    const t0 = performance.now();
    const obj = BpfObject.open(bpfObjectPath(object), opts);
    obj.load();
    const loaded = performance.now();
    const link = attach(obj);
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
commandMedian([process.execPath, CLI, 'probe', 'run', 'drops.kernel', '-d', '100ms', '--out', '/tmp/ebpfnet-bench']); // warm
rows.push(['command start → drops.kernel attached (from its attach record)', fmt(median(Array.from({ length: RUNS }, startToAttached))), '']);

const only = (name: string) => ({ drops_raw_tp: name === 'drops_raw_tp', drops_tp_btf: name === 'drops_tp_btf', drops_tracepoint: false, drops_kprobe: false, drops_kprobe_legacy: false });
const minimal = await ensureMinimalBtf(bpfObjectPath('drops.kernel'));
const rawTp = nativeLoadAttach('drops.kernel', 'drops_raw_tp', { autoload: only('drops_raw_tp'), btfPath: minimal }, (o) => o.program('drops_raw_tp').attachRawTracepoint('kfree_skb'));
const tpBtf = nativeLoadAttach('drops.kernel', 'drops_tp_btf', { autoload: only('drops_tp_btf') }, (o) => o.program('drops_tp_btf').attachTrace());
const selftest = nativeLoadAttach(
  'selftest',
  'st_tracepoint',
  { globals: { targ_tgid: process.pid, targ_tid: process.pid } },
  (o) => o.program('st_tracepoint').attach(),
);
rows.push(['drops.kernel in-process load + attach: raw_tp, minimal BTF (the fallback)', fmt(rawTp.loadMs + rawTp.attachMs), `load ${fmt(rawTp.loadMs)}, attach ${fmt(rawTp.attachMs)}`]);
rows.push(['drops.kernel in-process load + attach: tp_btf, vmlinux BTF (used: plain loads per drop)', fmt(tpBtf.loadMs + tpBtf.attachMs), `load ${fmt(tpBtf.loadMs)}, attach ${fmt(tpBtf.attachMs)}`]);
rows.push(['selftest object load + attach (tracepoint, vmlinux BTF)', fmt(selftest.loadMs + selftest.attachMs), `load ${fmt(selftest.loadMs)}, attach ${fmt(selftest.attachMs)}`]);
closeAll();

const width = Math.max(...rows.map((r) => r[0].length));
console.log(`median of ${RUNS} runs on ${process.version}`);
for (const [what, a, b] of rows) console.log(`${what.padEnd(width)}  ${a}${b ? `   | ${b}` : ''}`);
