// What each BPF probe costs per event, side by side with bpftrace doing the same aggregation,
// in one run under the same load: a UDP flood into an nftables drop (udp-flood.ts). The cost is
// the kernel's own run statistics (run_time_ns and run_cnt of every program, BPF_ENABLE_STATS)
// over the flood, not the packet rate, which moves ±20 % run to run on a shared VM; the rate
// and its loss against no probe stay as the last columns. Each probe runs at its default params
// (plus the row's), its overhead guard off so the cost itself shows.
//   npm run build && [ROUNDS=3] [FLOOD_SECONDS=3] node dist/test/bench/cost.js [probe-id|row label]...
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enableRunStats, programRunStats, type ProgramRunStats } from '../../engine/native/stats.js';
import { runProbe } from '../../engine/probe/runtime.js';
import type { Params } from '../../engine/probe/types.js';
import { probeRegistry } from '../../probes/index.js';
import { COST_ROWS, setFlowPair, setPeerMac, type CostRow } from './cost-rows.js';
import { flood, floodPair, median, type FloodPair } from './udp-flood.js';

const SECONDS = Number(process.env.FLOOD_SECONDS ?? 3);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const UNLIMITED = { cpu: 1, eventsPerSec: 1e12 };

/** What the programs of one process did over one flood. */
interface Sample {
  programs: number;
  runs: number;
  ns: number;
  pps: number;
}

/** Run counts and times of the programs that ran between two readings. */
function delta(before: ProgramRunStats[], after: ProgramRunStats[], pps: number): Sample {
  let programs = 0;
  let runs = 0;
  let ns = 0;
  for (const a of after) {
    const b = before.find((x) => x.progId === a.progId);
    const r = a.runCnt - (b?.runCnt ?? 0);
    if (r <= 0) continue;
    programs++;
    runs += r;
    ns += a.runTimeNs - (b?.runTimeNs ?? 0);
  }
  return { programs, runs, ns, pps };
}

/** One flood with the programs of `pid` counted around it. */
async function measure(pid: number | 'self', target: string): Promise<Sample> {
  const before = await programRunStats(pid);
  const pps = flood(target, SECONDS);
  if (pps === 0) throw new Error('the flood sender failed');
  return delta(before, await programRunStats(pid), pps);
}

async function probeSample(row: CostRow, pair: FloodPair, scratch: string, round: number): Promise<Sample> {
  const def = probeRegistry().get(row.probe);
  if (!def) throw new Error(`unknown probe ${row.probe}`);
  const params: Params = { duration: `${SECONDS + 3}s`, ...(row.params?.(pair) ?? {}) };
  const probe = runProbe(def, { step: 'bench', alias: 'p', probe: row.probe, params }, {
    rawDir: join(scratch, `${row.label}-${round}`.replace(/[^\w.-]/g, '_')),
    bundleRoot: scratch,
    signal: new AbortController().signal,
    budget: UNLIMITED,
  });
  await new Promise((resolve) => setTimeout(resolve, 1500)); // loaded and attached well before
  const sample = await measure('self', pair.peerIp);
  const finding = await probe;
  if (finding.status !== 'ok') throw new Error(`${row.label}: ${finding.status}: ${finding.reason}`);
  return sample;
}

async function bpftraceSample(script: string, pair: FloodPair): Promise<Sample> {
  const bt = spawn('bpftrace', ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  bt.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      bt.stdout!.on('data', (d: Buffer) => d.toString().includes('Attaching') && setTimeout(resolve, 500));
      bt.on('exit', (code) => reject(new Error(`bpftrace exited (${code}): ${stderr.trim().split('\n').pop()}`)));
    });
    return await measure(bt.pid!, pair.peerIp);
  } finally {
    bt.kill('SIGKILL');
  }
}

const wanted = process.argv.slice(2);
const rows = wanted.length ? COST_ROWS.filter((r) => wanted.includes(r.probe) || wanted.includes(r.label)) : COST_ROWS;
if (!rows.length) {
  console.error(`no row matches ${wanted.join(' ')}; rows: ${COST_ROWS.map((r) => r.label).join(', ')}`);
  process.exit(2);
}

const stats = await enableRunStats();
if (stats.how === 'unavailable') throw new Error(`no BPF run statistics: ${stats.why}`);
const pair = await floodPair();
setFlowPair(pair);
setPeerMac((await pair.inNs(['cat', `/sys/class/net/${pair.peerDev}/address`])).stdout.trim());
const scratch = mkdtempSync(join(tmpdir(), 'ebpfnet-cost-'));
const samples = new Map<string, Sample[]>();
const add = (what: string, s: Sample) => samples.set(what, [...(samples.get(what) ?? []), s]);
try {
  for (let round = 0; round < ROUNDS; round++) {
    add('no probe', { programs: 0, runs: 0, ns: 0, pps: flood(pair.peerIp, SECONDS) });
    for (const row of rows) {
      add(row.label, await probeSample(row, pair, scratch, round));
      if (row.bpftrace) add(row.bpftrace.label, await bpftraceSample(row.bpftrace.script, pair));
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
  await pair.teardown();
  await stats.close();
}

const base = median(samples.get('no probe')!.map((s) => s.pps));
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '');
console.log(`UDP flood into an nftables drop, ${SECONDS} s per run, median of ${ROUNDS} (min–max of ns per event); statistics: ${stats.how}`);
console.log('| what | programs | events/s | ns per event | min–max | ns per packet | pps | vs no probe |');
console.log('|---|---|---|---|---|---|---|---|');
for (const [what, list] of samples) {
  const perEvent = list.map((s) => (s.runs > 0 ? s.ns / s.runs : Number.NaN)).filter(Number.isFinite);
  const perPacket = list.map((s) => (s.pps > 0 ? s.ns / (s.pps * SECONDS) : Number.NaN));
  const pps = median(list.map((s) => s.pps));
  const cells = [
    what,
    what === 'no probe' ? '' : String(median(list.map((s) => s.programs))),
    what === 'no probe' ? '' : fmt(median(list.map((s) => s.runs / SECONDS))),
    perEvent.length ? fmt(median(perEvent)) : '',
    perEvent.length ? `${fmt(Math.min(...perEvent))}–${fmt(Math.max(...perEvent))}` : '',
    perEvent.length ? fmt(median(perPacket)) : '',
    fmt(pps),
    what === 'no probe' ? '' : `${((pps / base - 1) * 100).toFixed(1)} %`,
  ];
  console.log(`| ${cells.join(' | ')} |`);
}
