// What each BPF probe costs per event, side by side with bpftrace doing the same aggregation,
// in one run under the same load: a UDP flood into an nftables drop (udp-flood.ts). The cost is
// the kernel's own run statistics (run_time_ns and run_cnt of every program, BPF_ENABLE_STATS)
// over the flood, not the packet rate, which moves ±20 % run to run on a shared VM; the rate
// and its loss against no probe stay as the last columns. Each probe runs at its default params
// (plus the row's), its overhead guard off so the cost itself shows.
// BEFORE_ROOT (another built checkout, e.g. a worktree of an older commit) runs each probe row
// with that checkout's CLI too, in the same round: a before/after in the same conditions.
//   npm run build && [ROUNDS=3] [FLOOD_SECONDS=3] [BEFORE_ROOT=/path] node dist/test/bench/cost.js [probe-id|row label]...
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { enableRunStats, programRunStats, type ProgramRunStats } from '../../engine/native/stats.js';
import { BpfObject } from '../../engine/native/object.js';
import { packageRoot } from '../../engine/package-info.js';
import { formatBytes } from '../../engine/probe/map-memory.js';
import { COST_ROWS, type CostLab, type CostRow } from './cost-rows.js';
import { newLabName } from '../lab/names.js';
import { run } from '../helpers/netns.js';
import { flood, FLOOD_SRC_PORT, floodPair, median, type FloodPair } from './udp-flood.js';

const SECONDS = Number(process.env.FLOOD_SECONDS ?? 3);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const UNLIMITED = 'cpu=100%,events=1000000000';
const cliOf = (root: string) => join(root, 'dist', 'engine', 'cli', 'main.js');
const CLI = cliOf(packageRoot());
const BEFORE_ROOT = process.env.BEFORE_ROOT;
const FLOOR = 'floor: an empty tp_btf program on kfree_skb';

/** What the programs of one process did over one flood. */
interface Sample {
  programs: number;
  runs: number;
  ns: number;
  pps: number;
  /** What the probe's overhead guard reported over its whole window (same statistics). */
  guardNs?: number;
  /** Load time of its BPF object as the finding records it. */
  loadMs?: number;
  /** Kernel memory of the process's maps (fdinfo memlock) and its peak RSS, at the flood's end. */
  mapBytes: number;
  peakRss: number;
}

/** The kernel's accounting of every map `pid` holds (by map id), and its peak resident memory. */
async function processMemory(pid: number): Promise<{ mapBytes: number; peakRss: number }> {
  const byId = new Map<number, number>();
  for (const fd of await readdir(`/proc/${pid}/fdinfo`).catch(() => [] as string[])) {
    const text = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '');
    const id = /^map_id:\s*(\d+)/m.exec(text);
    const memlock = /^memlock:\s*(\d+)/m.exec(text);
    if (id && memlock) byId.set(Number(id[1]), Number(memlock[1]));
  }
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const hwm = /^VmHWM:\s*(\d+) kB/m.exec(status);
  return { mapBytes: [...byId.values()].reduce((a, b) => a + b, 0), peakRss: hwm ? Number(hwm[1]) * 1024 : 0 };
}

/** The first number under a key named `key` anywhere in a finding's data (probes record their load time in different places). */
function firstNumberNamed(value: unknown, key: string): number | undefined {
  if (Array.isArray(value)) {
    for (const v of value) {
      const n = firstNumberNamed(v, key);
      if (n !== undefined) return n;
    }
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const n = k === key && typeof v === 'number' ? v : firstNumberNamed(v, key);
      if (n !== undefined) return n;
    }
  }
  return undefined;
}

/** The overhead guard's ns per event in a finding's data (`overhead.nsPerEvent`). */
function guardNsPerEvent(data: unknown): number | undefined {
  const overhead = (data as { overhead?: { nsPerEvent?: number | null } } | null)?.overhead;
  return typeof overhead?.nsPerEvent === 'number' ? overhead.nsPerEvent : undefined;
}

/** Run counts and times of the programs that ran between two readings. */
function delta(before: ProgramRunStats[], after: ProgramRunStats[], pps: number): Omit<Sample, 'mapBytes' | 'peakRss'> {
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

/** One flood with the programs of `pid` counted around it, and its memory at the end. */
async function measure(pid: number, target: string, srcPort = 0): Promise<Sample> {
  const before = await programRunStats(pid);
  const pps = flood(target, SECONDS, srcPort);
  if (pps === 0) throw new Error(`the flood sender failed${srcPort ? ` (is its port ${srcPort} taken?)` : ''}`);
  const after = await programRunStats(pid);
  return { ...delta(before, after, pps), ...(await processMemory(pid)) };
}

/** Resolves once `child` holds BPF programs (attached), rejects when it exits first. */
async function attached(child: ChildProcess, what: string, stderr: () => string): Promise<void> {
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${what} exited (${code}): ${stderr().trim().split('\n').pop()}`))));
  const loaded = (async () => {
    while ((await programRunStats(child.pid!)).length === 0) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500)); // every program of a multi-program probe
  })();
  await Promise.race([loaded, exited]);
}

/** The CLI child's stdout and stderr as they come. */
function collectOutput(child: ChildProcess): { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return { stdout: () => out, stderr: () => err };
}

/** `ebpfnet probe run` of the row, as a user runs it, measured around one flood. */
async function probeSample(row: CostRow, lab: CostLab, scratch: string, cli = CLI): Promise<Sample> {
  const params = Object.entries(row.params?.(lab) ?? {}).flatMap(([k, v]) => ['--param', `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`]);
  const argv = [cli, 'probe', 'run', row.probe, '-d', `${SECONDS + 3}s`, '--budget', UNLIMITED, '--out', scratch, '--json', ...params];
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collectOutput(child);
  const done = new Promise<number | null>((resolve) => child.on('close', resolve));
  try {
    await attached(child, row.label, output.stderr);
    const sample = await measure(child.pid!, lab.peerIp, row.followsFlood ? FLOOD_SRC_PORT : 0);
    if ((await done) !== 0) throw new Error(`${row.label}: ${output.stderr().trim().split('\n').pop()}`);
    const finding = JSON.parse(output.stdout()) as { status: string; reason?: string; data?: unknown };
    if (finding.status !== 'ok') throw new Error(`${row.label}: ${finding.status}: ${finding.reason}`);
    return { ...sample, guardNs: guardNsPerEvent(finding.data), loadMs: firstNumberNamed(finding.data, 'loadMs') };
  } finally {
    child.kill('SIGKILL');
  }
}

/** bpftrace's run over a flood from `srcPort` (the flood's own flow when the row follows it). */
async function bpftraceSample(script: string, pair: FloodPair, srcPort: number): Promise<Sample> {
  const bt = spawn('bpftrace', ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collectOutput(bt);
  try {
    await attached(bt, 'bpftrace', output.stderr);
    return await measure(bt.pid!, pair.peerIp, srcPort);
  } finally {
    bt.kill('SIGKILL');
  }
}

const EMPTY_HOOK = join(packageRoot(), 'build', 'bpf', 'fixtures', 'empty-hook.bpf.o');

/** One flood with an empty tp_btf program on kfree_skb attached in this process: the floor of a run. */
async function floorSample(target: string): Promise<Sample> {
  const obj = BpfObject.open(EMPTY_HOOK, { autoload: { empty_kfree_skb: true } });
  try {
    obj.load();
    obj.program('empty_kfree_skb').attach();
    return await measure(process.pid, target);
  } finally {
    obj.close();
  }
}

/**
 * What the run statistics add to every run of every BPF program while they are on: an empty XDP
 * program timed by BPF_PROG_TEST_RUN (`bpftool prog run`, a million runs), statistics off then
 * on. Taken before the benchmark turns them on for itself.
 */
async function statisticsCost(): Promise<{ offNs: number; onNs: number }> {
  const obj = BpfObject.open(EMPTY_HOOK, { autoload: { empty_xdp: true } });
  const frame = join(mkdtempSync(join(tmpdir(), 'ebpfnet-xdp-')), 'frame');
  writeFileSync(frame, Buffer.alloc(64));
  try {
    obj.load();
    const [prog] = await programRunStats('self', [obj.program('empty_xdp').info.fd!]);
    const timed = async () => {
      const r = await run(['bpftool', 'prog', 'run', 'id', String(prog!.progId), 'data_in', frame, 'repeat', '1000000']);
      const m = /duration \(average\): (\d+)ns/.exec(`${r.stdout}\n${r.stderr}`);
      if (!m) throw new Error(`bpftool prog run said: ${r.stdout}${r.stderr}`);
      return Number(m[1]);
    };
    const offNs = median([await timed(), await timed(), await timed()]);
    const on = await enableRunStats();
    try {
      return { offNs, onNs: median([await timed(), await timed(), await timed()]) };
    } finally {
      await on.close();
    }
  } finally {
    obj.close();
    rmSync(dirname(frame), { recursive: true, force: true });
  }
}

const wanted = process.argv.slice(2);
const rows = wanted.length ? COST_ROWS.filter((r) => wanted.includes(r.probe) || wanted.includes(r.label)) : COST_ROWS;
if (!rows.length) {
  console.error(`no row matches ${wanted.join(' ')}; rows: ${COST_ROWS.map((r) => r.label).join(', ')}`);
  process.exit(2);
}

const statsCost = await statisticsCost();
const stats = await enableRunStats();
if (stats.how === 'unavailable') throw new Error(`no BPF run statistics: ${stats.why}`);
const pair = await floodPair();
// Two idle Ethernet devices (the ends of a veth pair): a tap and a port of a VM the flood is not for.
const names = newLabName();
const lab: CostLab = { ...pair, peerMac: (await pair.inNs(['cat', `/sys/class/net/${pair.peerDev}/address`])).stdout.trim(), idleTap: names.dev('t'), idlePort: names.dev('v') };
await run(['ip', 'link', 'add', lab.idleTap, 'type', 'veth', 'peer', 'name', lab.idlePort]);
const scratch = mkdtempSync(join(tmpdir(), 'ebpfnet-cost-'));
const samples = new Map<string, Sample[]>();
const add = (what: string, s: Sample) => samples.set(what, [...(samples.get(what) ?? []), s]);
try {
  for (let round = 0; round < ROUNDS; round++) {
    add('no probe', { programs: 0, runs: 0, ns: 0, pps: flood(pair.peerIp, SECONDS, 0), mapBytes: 0, peakRss: 0 });
    add(FLOOR, await floorSample(pair.peerIp));
    for (const row of rows) {
      if (BEFORE_ROOT) {
        // A row the older checkout cannot run (a param it lacks) is left out of its column.
        const before = await probeSample(row, lab, scratch, cliOf(BEFORE_ROOT)).catch((err: Error) => (console.error(`before: ${err.message}`), null));
        if (before) add(`${row.label} (before)`, before);
      }
      add(row.label, await probeSample(row, lab, scratch));
      for (const bt of row.bpftrace ?? []) add(bt.label, await bpftraceSample(typeof bt.script === 'string' ? bt.script : bt.script(lab), lab, row.followsFlood ? FLOOD_SRC_PORT : 0));
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
  await run(['ip', 'link', 'del', lab.idleTap]).catch(() => undefined);
  await pair.teardown();
  await stats.close();
}

const base = median(samples.get('no probe')!.map((s) => s.pps));
/** The median of a field some samples have, formatted; empty when none has it. */
const medianOf = (list: Sample[], field: (s: Sample) => number | undefined, digits = 0) => {
  const values = list.flatMap((s) => (field(s) === undefined ? [] : [field(s)!]));
  return values.length ? fmt(median(values), digits) : '';
};
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '');
// A run's floor: the empty program's ns per run, in this run's conditions.
const floorNs = median(samples.get(FLOOR)!.map((s) => s.ns / Math.max(1, s.runs)));
console.log(`UDP flood into an nftables drop, ${SECONDS} s per run, median of ${ROUNDS} (min–max of ns per event); statistics: ${stats.how}`);
console.log(
  `An empty XDP program's run (BPF_PROG_TEST_RUN): ${statsCost.offNs} ns with the statistics off, ${statsCost.onNs} ns on. The floor of a run in these statistics (an empty tp_btf program on kfree_skb): ${fmt(floorNs)} ns.`,
);
console.log('| what | programs | events/s | ns per event | min–max | ns per packet | beyond the floor: ns per packet | guard: ns per event | load ms | maps (kernel) | peak RSS | pps | vs no probe |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const [what, list] of samples) {
  const perEvent = list.map((s) => (s.runs > 0 ? s.ns / s.runs : Number.NaN)).filter(Number.isFinite);
  const perPacket = list.map((s) => (s.pps > 0 ? s.ns / (s.pps * SECONDS) : Number.NaN));
  const beyondFloor = list.map((s) => (s.pps > 0 ? (s.ns - s.runs * floorNs) / (s.pps * SECONDS) : Number.NaN));
  const pps = median(list.map((s) => s.pps));
  const cells = [
    what,
    what === 'no probe' ? '' : String(median(list.map((s) => s.programs))),
    what === 'no probe' ? '' : fmt(median(list.map((s) => s.runs / SECONDS))),
    perEvent.length ? fmt(median(perEvent)) : '',
    perEvent.length ? `${fmt(Math.min(...perEvent))}–${fmt(Math.max(...perEvent))}` : '',
    perEvent.length ? fmt(median(perPacket)) : '',
    // bpftrace attaches classic tracepoints, whose floor is not the tp_btf program's.
    perEvent.length && what !== FLOOR && !what.startsWith('bpftrace') ? fmt(median(beyondFloor)) : '',
    medianOf(list, (s) => s.guardNs),
    medianOf(list, (s) => s.loadMs, 1),
    what === 'no probe' ? '' : formatBytes(median(list.map((s) => s.mapBytes))),
    what === 'no probe' ? '' : formatBytes(median(list.map((s) => s.peakRss))),
    fmt(pps),
    what === 'no probe' ? '' : `${((pps / base - 1) * 100).toFixed(1)} %`,
  ];
  console.log(`| ${cells.join(' | ')} |`);
}
