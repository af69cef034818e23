// cpu.runqlat: how long threads wait for a CPU (run-queue latency: woken or preempted →
// switched in), per thread and per thread class (vCPU, vhost, other), with the native driver
// (probes/cpu.runqlat/cpu.runqlat.bpf.c). Answers "is the VM's vCPU / vhost thread runnable but not running?"
// What the BPF session saw is recorded as capture records, so a replay re-parses it.
import { readFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { release } from 'node:os';
import type { U64 } from '../../engine/native/btf-layout.js';
import { BPF_NOEXIST, u32Key } from '../../engine/native/map.js';
import { statField, statStateAndName } from '../../engine/target/proc.js';
import { loadedFields, loadedRecord, type LoadedRecord } from '../../engine/native/attach-plan.js';
import type { BpfObject } from '../../engine/native/object.js';
import { captureRecord, readBpfSession, runBpfSession } from '../../engine/probe/bpf-session.js';
import { overheadOf, type OverheadBudget } from '../../engine/probe/overhead.js';
import type { ChartSpec, HistogramChart, Params, ProbeDefinition, ProbeIO, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';
import { fmtUs, round } from '../lib/format.js';
import { percentiles, usBuckets, type Pcts, type UsBucket } from '../lib/histogram.js';
import { durationParam, topParam } from '../lib/params.js';
import { loadRunqlat, TRACEPOINTS, type RunqlatMethod } from './attach.js';
import { DATA, type RunqlatClass, type RunqlatData, type RunqlatThread } from './data.js';
import { recorded } from '../lib/recorded.js';
import { loadedTables, tracepointRun } from '../lib/bpf-probe.js';

/** probes/cpu.runqlat/cpu.runqlat.h */
const SLOTS = 27;
const FILTER = { all: 0, tids: 1, tgid: 2 } as const;
const TOTAL_TIMED = 0;
const TOTAL_NO_START = 1;
const TOTAL_NO_THREAD = 2;
/** Map sizes when every thread of the host is measured. */
const HOST_THREADS = 8192;
const HOST_STARTS = 16384;
/** The `targets` map's size (probes/cpu.runqlat/cpu.runqlat.bpf.c). */
const MAX_TARGETS = 4096;

/**
 * What a session may cost: 5% of one CPU, 1M program runs/s. sched_switch and sched_wakeup
 * fire for every thread of the host, not only the measured ones, so the programs filter first:
 * in the process mode a task of another process costs one field read. Measured here (with the
 * run statistics on): ~0.12 µs per run on a host switching 160k times a second while one
 * process is measured (2% of a CPU); ~0.2 µs on average with measured threads waiting; ~0.5 µs
 * when every thread of the host is measured (two map updates per switch), which a host switching
 * 100k times a second already pays 5% of a CPU for. Past the budget the session stops early and
 * keeps the histograms up to then.
 */
export const RUNQLAT_BUDGET: OverheadBudget = { cpu: 0.05, eventsPerSec: 1_000_000 };

/** Default `threshold_us`: a wait for a CPU longer than 1 ms is noticeable for a vCPU. */
const DEFAULT_THRESHOLD_US = 1000;
/** p99 above threshold × this, or a thread waiting this share of the window, is critical. */
const CRITICAL_FACTOR = 10;
const CRITICAL_SHARE = 0.1;

export type ThreadClass = 'vcpu' | 'vhost' | 'other';
export type Identification = 'tids' | 'names' | 'none';
/** QEMU names its vCPU threads `CPU <n>/<accelerator>` (debug-threads=on, which libvirt sets). */
const VCPU_RE = /^CPU \d+\/(KVM|TCG|HVF|WHPX|NVMM)$/;
/** vhost-net workers: `vhost-<pid of the QEMU thread that set them up>`. */
const VHOST_RE = /^vhost-\d+$/;
const QEMU_RE = /^(qemu-system-|qemu-kvm|kvm$)/;

export function threadClass(comm: string): ThreadClass {
  if (VCPU_RE.test(comm)) return 'vcpu';
  if (VHOST_RE.test(comm)) return 'vhost';
  return 'other';
}

/** The `threads` capture: who is measured, resolved from /proc before attaching. */
interface ThreadsCapture {
  pid: number | null;
  /** The process's name (`/proc/<pid>/comm`). */
  process: string | null;
  comm: string | null;
  /** How the programs filter: every thread of `pid`, a list of thread ids, or every thread. */
  filter: keyof typeof FILTER;
  /** The candidates' names at the start (the selected ones when `comm` filters), tid → name. */
  threads: Array<{ tid: number; comm: string; kernelThread?: boolean }>;
  /**
   * Thread ids written into the programs' `targets` map: the chosen threads (`tids` filter), or
   * every thread of `pid` (the classic tracepoints' wakeups carry no process id).
   */
  targets: number[];
  /** `vcpu_tids` / `vhost_tids`: threads classed by id (null: not given; absent in older records). */
  vcpuTids?: number[] | null;
  vhostTids?: number[] | null;
}

interface AttachCapture extends LoadedRecord<RunqlatMethod> {
  thresholdNs: number;
}

interface DumpCapture {
  /** Time the programs were attached, from attach to dump (or to the guard's early stop). */
  windowMs: number;
  timed: number;
  noStart: number;
  noThread: number;
  entries: Array<{
    tid: number;
    comm: string;
    slots: number[];
    count: number;
    totalNs: number;
    maxNs: number;
    overThreshold: number;
    involuntary: number;
    voluntary: number;
  }>;
  /**
   * Threads still runnable, not switched in, when the window closed, and how long they had
   * waited (absent in old recordings): a thread the CPU never reached has no finished wait.
   */
  waiting?: Array<{ tid: number; comm: string; waitedNs: number }>;
}

export type { RunqlatClass, RunqlatData, RunqlatThread } from './data.js';

// ---- collect ----

function parseTids(list: string[], param = 'tids'): number[] {
  return list.map((t) => {
    if (!/^\d+$/.test(t) || Number(t) <= 0) throw new Error(`${param}: ${JSON.stringify(t)} is not a thread id`);
    return Number(t);
  });
}

/** `vcpu_tids` / `vhost_tids`: null when not given. */
function classTids(params: Params, name: 'vcpu_tids' | 'vhost_tids'): number[] | null {
  const v = params[name] as string[] | undefined;
  return v === undefined ? null : [...new Set(parseTids(v, name))];
}

function commRegex(params: Params): RegExp | null {
  const comm = params.comm as string | undefined;
  if (comm === undefined || comm === '') return null;
  try {
    return new RegExp(comm);
  } catch (err) {
    throw new Error(`comm: not a regular expression: ${(err as Error).message}`);
  }
}

async function readText(path: string): Promise<string | null> {
  try {
    return (await readFile(path, 'utf8')).replace(/\n$/, '');
  } catch {
    return null;
  }
}

/** Thread ids of process `pid` with their names. */
async function tasksOf(pid: number): Promise<Array<{ tid: number; comm: string }>> {
  let entries: string[];
  try {
    entries = await readdir(`/proc/${pid}/task`);
  } catch {
    throw new Error(`no process ${pid}`);
  }
  const out: Array<{ tid: number; comm: string }> = [];
  for (const e of entries) {
    const comm = await readText(`/proc/${pid}/task/${e}/comm`);
    if (comm !== null) out.push({ tid: Number(e), comm });
  }
  return out.sort((a, b) => a.tid - b.tid);
}

async function numericEntries(dir: string): Promise<number[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((e) => /^\d+$/.test(e)).map(Number);
}

/** Whether this kernel runs vhost workers as kernel threads (before 6.4) rather than as threads of QEMU. */
function vhostAreKernelThreads(): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release());
  return m !== null && (Number(m[1]) < 6 || (Number(m[1]) === 6 && Number(m[2]) < 4));
}

/** Kernel threads `vhost-<tid>` working for one of `tids` (kernels before 6.4). */
async function vhostKernelThreads(tids: Set<number>): Promise<Array<{ tid: number; comm: string }>> {
  const out: Array<{ tid: number; comm: string }> = [];
  for (const pid of await numericEntries('/proc')) {
    const comm = await readText(`/proc/${pid}/comm`);
    const m = comm === null ? null : /^vhost-(\d+)$/.exec(comm);
    if (!m || !tids.has(Number(m[1]))) continue;
    const stat = await readText(`/proc/${pid}/stat`);
    const ppid = stat === null ? null : statField(stat, 4);
    if (ppid === 2) out.push({ tid: pid, comm: comm! }); // a child of kthreadd
  }
  return out;
}

/** A thread's process, parent and name, from /proc; null when there is no such thread. */
async function threadInfo(tid: number): Promise<{ tgid: number; ppid: number; comm: string } | null> {
  const status = await readText(`/proc/${tid}/status`);
  if (status === null) return null;
  const field = (name: string) => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(status)?.[1]);
  return { tgid: field('Tgid'), ppid: field('PPid'), comm: (await readText(`/proc/${tid}/comm`)) ?? '' };
}

/**
 * The threads `vcpu_tids` and `vhost_tids` name, checked: each exists, and belongs to `pid` when
 * given (a vhost worker may instead be a kernel thread, before Linux 6.4).
 */
async function classifiedThreads(pid: number | null, vcpu: number[], vhost: number[]): Promise<Array<{ tid: number; comm: string; kernelThread?: boolean }>> {
  const both = vcpu.filter((t) => vhost.includes(t));
  if (both.length > 0) throw new Error(`thread ${both.join(', ')} is in both vcpu_tids and vhost_tids`);
  const out: Array<{ tid: number; comm: string; kernelThread?: boolean }> = [];
  for (const [param, list] of [['vcpu_tids', vcpu], ['vhost_tids', vhost]] as const) {
    for (const tid of list) {
      const info = await threadInfo(tid);
      if (info === null) throw new Error(`${param}: no thread ${tid}`);
      const kernelThread = info.ppid === 2; // a child of kthreadd
      if (pid !== null && info.tgid !== pid && !(param === 'vhost_tids' && kernelThread)) {
        throw new Error(`${param}: thread ${tid} is not a thread of process ${pid} (it belongs to ${info.tgid})`);
      }
      out.push({ tid, comm: info.comm, ...(pid !== null && info.tgid !== pid ? { kernelThread: true } : {}) });
    }
  }
  return out;
}

/** Adds the threads classed by id to a selection (they are measured whatever else chose the threads). */
function withClassified(sel: ThreadsCapture, classified: Array<{ tid: number; comm: string; kernelThread?: boolean }>): ThreadsCapture {
  const known = new Set(sel.threads.map((t) => t.tid));
  const extra = classified.filter((t) => !known.has(t.tid));
  if (extra.length === 0) return sel;
  const threads = [...sel.threads, ...extra];
  if (sel.filter === 'all') return { ...sel, threads };
  // Every thread of `pid` is measured already: only kernel threads need the `targets` map.
  const added = sel.filter === 'tgid' ? extra.filter((t) => t.kernelThread) : extra;
  return { ...sel, threads, targets: [...added.map((t) => t.tid), ...sel.targets] };
}

async function resolveThreads(params: Params, re: RegExp | null): Promise<ThreadsCapture> {
  const vcpuTids = classTids(params, 'vcpu_tids');
  const vhostTids = classTids(params, 'vhost_tids');
  const pid = (params.pid as number | undefined) ?? null;
  if (pid !== null && (await readText(`/proc/${pid}/comm`)) === null) throw new Error(`no process ${pid}`);
  const classified = await classifiedThreads(pid, vcpuTids ?? [], vhostTids ?? []);
  const sel = await selectThreads(params, re, classified.length > 0);
  return { ...withClassified(sel, classified), vcpuTids, vhostTids };
}

/** The threads `pid`, `tids` and `comm` choose; `more`: threads classed by id will be added. */
async function selectThreads(params: Params, re: RegExp | null, more: boolean): Promise<ThreadsCapture> {
  const pid = (params.pid as number | undefined) ?? null;
  const tids = parseTids((params.tids as string[] | undefined) ?? []);
  const process = pid === null ? null : await readText(`/proc/${pid}/comm`);
  if (pid !== null && process === null) throw new Error(`no process ${pid}`);
  const base = { pid, process, comm: re === null ? null : (params.comm as string) };

  if (tids.length > 0) {
    const threads: ThreadsCapture['threads'] = [];
    for (const tid of tids) {
      const info = await threadInfo(tid);
      if (info === null) throw new Error(`no thread ${tid}`);
      if (pid !== null && info.tgid !== pid) throw new Error(`thread ${tid} is not a thread of process ${pid} (it belongs to ${info.tgid})`);
      threads.push({ tid, comm: info.comm });
    }
    const chosen = re ? threads.filter((t) => re.test(t.comm)) : threads;
    if (chosen.length === 0 && !more) throw new Error(`none of threads ${tids.join(', ')} has a name matching /${re!.source}/`);
    return { ...base, filter: 'tids', threads: chosen, targets: chosen.map((t) => t.tid) };
  }

  if (pid !== null) {
    const own = await tasksOf(pid);
    const kernel = vhostAreKernelThreads() ? await vhostKernelThreads(new Set(own.map((t) => t.tid))) : [];
    const all = [...own, ...kernel.map((t) => ({ ...t, kernelThread: true }))];
    if (re) {
      const chosen = all.filter((t) => re.test(t.comm));
      if (chosen.length === 0 && !more) {
        const names = [...new Set(all.map((t) => t.comm))].slice(0, 10).join(', ');
        throw new Error(`no thread of process ${pid} has a name matching /${re.source}/ (its threads: ${names})`);
      }
      return { ...base, filter: 'tids', threads: chosen, targets: chosen.map((t) => t.tid) };
    }
    // Every thread of the process, also those it starts during the window (the classic
    // tracepoints learn those as they run); vhost kernel threads first, should the map be full.
    return { ...base, filter: 'tgid', threads: all, targets: [...kernel, ...own].map((t) => t.tid).slice(0, MAX_TARGETS) };
  }

  if (re) {
    const chosen: ThreadsCapture['threads'] = [];
    for (const p of await numericEntries('/proc')) {
      for (const tid of await numericEntries(`/proc/${p}/task`)) {
        const comm = await readText(`/proc/${p}/task/${tid}/comm`);
        if (comm !== null && re.test(comm)) chosen.push({ tid, comm });
      }
    }
    if (chosen.length === 0 && !more) throw new Error(`no thread of this host has a name matching /${re.source}/`);
    return { ...base, filter: 'tids', threads: chosen, targets: chosen.map((t) => t.tid) };
  }
  return { ...base, filter: 'all', threads: [], targets: [] };
}

/**
 * Waits no switch-in ended: threads runnable when the window closes. bpf_ktime_get_ns and
 * hrtime are both CLOCK_MONOTONIC. A thread /proc does not show runnable (R) is left out.
 */
function openWaits(o: BpfObject, windowMs: number, detachedAgoMs: number, seeds: Map<number, Seed>): NonNullable<DumpCapture['waiting']> {
  // Counting ended when the guard detached the programs: waits are measured to then.
  const now = process.hrtime.bigint() - BigInt(Math.round(detachedAgoMs * 1e6));
  const out: NonNullable<DumpCapture['waiting']> = [];
  for (const { key: tid, value } of o.map('start').readAllDecoded<number, U64>()) {
    const ts = BigInt(value);
    const waitedNs = Number(now - ts);
    const proc = procState(tid);
    if (waitedNs <= 0 || proc?.state !== 'R') continue;
    // A seed no event replaced: the thread waited since the window opened only if it never ran since.
    const seed = seeds.get(tid);
    if (seed && seed.ts === ts && runNs(tid) !== seed.runNs) continue;
    out.push({ tid, comm: proc.comm, waitedNs: Math.min(waitedNs, Math.round(windowMs * 1e6)) });
  }
  return out.sort((a, b) => a.tid - b.tid);
}

/** A start time written when the window opened, for a thread runnable then, and what it had run by then. */
interface Seed {
  ts: bigint;
  runNs: number | null;
}

/** The time a thread has run, ns (schedstat's first field); null when it is gone. */
function runNs(tid: number): number | null {
  try {
    return Number(readFileSync(`/proc/${tid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}

/**
 * Threads already runnable when the programs attach (preempted before, or woken before) have
 * no start time, and one the CPU never reaches would show no wait at all: each gets the
 * window's opening as its start (an event replaces it). Whether it ran since is told at the end.
 */
function seedRunnable(o: BpfObject, tids: number[]): Map<number, Seed> {
  const seeds = new Map<number, Seed>();
  const start = o.map('start');
  for (const tid of tids) {
    if (procState(tid)?.state !== 'R') continue;
    const ts = process.hrtime.bigint();
    const value = Buffer.alloc(8);
    value.writeBigUInt64LE(ts);
    try {
      start.update(u32Key(tid), value, BPF_NOEXIST);
      seeds.set(tid, { ts, runNs: runNs(tid) });
    } catch {
      /* an event came first, or the map is full: nothing to seed */
    }
  }
  return seeds;
}

/** A thread's state letter and name from /proc (read at once: the dump is synchronous). */
function procState(tid: number): { state: string; comm: string } | null {
  try {
    return statStateAndName(readFileSync(`/proc/${tid}/stat`, 'utf8'));
  } catch {
    return null; /* gone */
  }
}

/** struct runqlat_thread, decoded. */
interface ThreadValue {
  slots: number[];
  count: number;
  total_ns: U64;
  max_ns: number;
  over_threshold: number;
  involuntary: number;
  voluntary: number;
  comm: string;
}

function readDump(o: BpfObject, windowMs: number, detachedAgoMs: number, seeds: Map<number, Seed>): DumpCapture {
  const totals = o.map('totals');
  const entries: DumpCapture['entries'] = [];
  for (const { key: tid, value: v } of o.map('threads').readAllDecoded<number, ThreadValue>()) {
    entries.push({
      tid,
      comm: v.comm,
      slots: v.slots,
      count: v.count,
      totalNs: Number(v.total_ns),
      maxNs: v.max_ns,
      overThreshold: v.over_threshold,
      involuntary: v.involuntary,
      voluntary: v.voluntary,
    });
  }
  entries.sort((a, b) => a.tid - b.tid);
  return {
    windowMs: round(windowMs),
    timed: Number(totals.sumU64(u32Key(TOTAL_TIMED))),
    noStart: Number(totals.sumU64(u32Key(TOTAL_NO_START))),
    noThread: Number(totals.sumU64(u32Key(TOTAL_NO_THREAD))),
    entries,
    waiting: openWaits(o, windowMs, detachedAgoMs, seeds),
  };
}

async function collect(params: Params, io: ProbeIO): Promise<void> {
  const re = commRegex(params);
  parseTids((params.tids as string[] | undefined) ?? []);
  classTids(params, 'vcpu_tids');
  classTids(params, 'vhost_tids');
  const sel = await recorded<ThreadsCapture>(io, 'threads', () => resolveThreads(params, re));
  if (sel.targets.length > MAX_TARGETS) throw new Error(`${sel.targets.length} threads chosen: at most ${MAX_TARGETS} can be measured by id`);
  const thresholdNs = Math.round(((params.threshold_us as number | undefined) ?? DEFAULT_THRESHOLD_US) * 1000);

  const load = async () => {
    const loaded = await loadRunqlat({
      globals: {
        filter_mode: FILTER[sel.filter],
        targ_tgid: sel.filter === 'tgid' ? sel.pid! : 0,
        targ_extra: sel.threads.some((t) => t.kernelThread) ? 1 : 0,
        threshold_ns: BigInt(thresholdNs),
      },
      ...(sel.filter === 'all' ? { maxEntries: { threads: HOST_THREADS, start: HOST_STARTS } } : {}),
      targets: sel.targets,
    });
    const attachedAt = performance.now();
    const record: AttachCapture = { ...loadedRecord(loaded), thresholdNs };
    seeds = seedRunnable(loaded.obj, sel.threads.map((t) => t.tid));
    return { obj: loaded.obj, record, attachedAt };
  };
  let seeds = new Map<number, Seed>();
  await runBpfSession(io, { load, window: params.duration as number, read: (o, w) => readDump(o, w.ms, w.detachedAgoMs, seeds) });
}

// ---- parse ----

type DumpEntry = DumpCapture['entries'][number] & { openNs?: number };

/** A thread's aggregate with the wait still running at the window's end counted in (length so far). */
function withOpenWait(e: DumpEntry | undefined, open: NonNullable<DumpCapture['waiting']>[number] | undefined, thresholdNs: number, tid = e?.tid ?? 0): DumpEntry {
  const base: DumpEntry = e ?? { tid, comm: open?.comm ?? '', slots: new Array<number>(SLOTS).fill(0), count: 0, totalNs: 0, maxNs: 0, overThreshold: 0, involuntary: 0, voluntary: 0 };
  if (!open) return base;
  const slots = [...base.slots];
  const us = Math.floor(open.waitedNs / 1000);
  const slot = us === 0 ? 0 : Math.min(Math.floor(Math.log2(us)) + 1, SLOTS - 1);
  slots[slot] = (slots[slot] ?? 0) + 1;
  return {
    ...base,
    slots,
    count: base.count + 1,
    totalNs: base.totalNs + open.waitedNs,
    maxNs: Math.max(base.maxNs, open.waitedNs),
    overThreshold: base.overThreshold + (thresholdNs > 0 && open.waitedNs >= thresholdNs ? 1 : 0),
    openNs: open.waitedNs,
  };
}

function addSlots(into: number[], from: number[]): void {
  for (let i = 0; i < SLOTS; i++) into[i] = (into[i] ?? 0) + (from[i] ?? 0);
}

const byWorst = (a: { p99Us: number; maxUs: number; totalWaitMs: number; tid: number }, b: typeof a) =>
  b.p99Us - a.p99Us || b.maxUs - a.maxUs || b.totalWaitMs - a.totalWaitMs || a.tid - b.tid;

function aggregate(label: string, threads: Array<RunqlatThread & { slots: number[] }>): RunqlatClass {
  const slots = new Array<number>(SLOTS).fill(0);
  for (const t of threads) addSlots(slots, t.slots);
  const maxUs = threads.reduce((m, t) => Math.max(m, t.maxUs), 0);
  const sum = (f: (t: RunqlatThread) => number) => threads.reduce((s, t) => s + f(t), 0);
  const worst = [...threads].filter((t) => t.count > 0).sort(byWorst)[0];
  return {
    label,
    threads: threads.length,
    count: sum((t) => t.count),
    ...percentiles(slots, maxUs),
    maxUs,
    totalWaitMs: round(sum((t) => t.totalWaitMs)),
    waitShare: threads.length > 0 ? round(sum((t) => t.waitShare) / threads.length, 4) : 0,
    maxWaitShare: threads.reduce((m, t) => Math.max(m, t.waitShare), 0),
    overThreshold: sum((t) => t.overThreshold),
    involuntary: sum((t) => t.involuntary),
    voluntary: sum((t) => t.voluntary),
    worst: worst ? { tid: worst.tid, comm: worst.comm } : null,
    waitingAtEnd: threads.filter((t) => t.waitingAtEndUs > 0).length,
    buckets: usBuckets(slots),
  };
}

/** 850 µs, 8.2 ms, 1.3 s: whole µs, the histograms' resolution. */
const fmtWait = (us: number) => fmtUs(us, { wholeUs: true });

const pct = (share: number) => `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%`;

function histogram(title: string, buckets: UsBucket[], p: Pcts & { maxUs: number }): HistogramChart {
  return {
    kind: 'histogram',
    title,
    unit: 'µs',
    buckets: buckets.map((b) => ({ low: b.lowUs, high: b.highUs, count: b.count })),
    percentiles: { P50: p.p50Us, P95: p.p95Us, P99: p.p99Us, max: p.maxUs },
  };
}

function parse(records: RawRecord[], params: Params): ProbeResult<RunqlatData> {
  const sel = JSON.parse(captureRecord(records, 'threads').stdout) as ThreadsCapture;
  const { attach: att, dump } = readBpfSession<AttachCapture, DumpCapture>(records);
  const overhead = overheadOf(records);
  const top = Math.max(1, (params.top as number | undefined) ?? 20);
  const thresholdUs = att.thresholdNs / 1000;
  const windowMs = dump.windowMs;
  const notes: string[] = [];

  // Every selected thread (also those that never waited) and every thread the programs saw.
  const names = new Map(sel.threads.map((t) => [t.tid, t.comm]));
  const open = new Map((dump.waiting ?? []).map((w) => [w.tid, w]));
  const seen = new Map(dump.entries.map((e) => [e.tid, withOpenWait(e, open.get(e.tid), att.thresholdNs)]));
  for (const w of open.values()) if (!seen.has(w.tid)) seen.set(w.tid, withOpenWait(undefined, w, att.thresholdNs, w.tid));
  // Threads named by `vcpu_tids` / `vhost_tids` are in their class by id, whatever their name.
  const byId = new Map<number, ThreadClass>([...(sel.vcpuTids ?? []).map((t) => [t, 'vcpu'] as const), ...(sel.vhostTids ?? []).map((t) => [t, 'vhost'] as const)]);
  const tids = new Set([...(sel.filter === 'all' ? [] : sel.threads.map((t) => t.tid)), ...byId.keys(), ...seen.keys()]);
  const threads = [...tids].map((tid) => {
    const e = seen.get(tid);
    const comm = names.get(tid) ?? e?.comm ?? '';
    const slots = e?.slots ?? new Array<number>(SLOTS).fill(0);
    const maxUs = round((e?.maxNs ?? 0) / 1000);
    const totalWaitMs = round((e?.totalNs ?? 0) / 1e6);
    return {
      tid,
      comm,
      class: byId.get(tid) ?? threadClass(comm),
      count: e?.count ?? 0,
      waitingAtEndUs: round((e?.openNs ?? 0) / 1000),
      ...percentiles(slots, maxUs),
      maxUs,
      totalWaitMs,
      waitShare: windowMs > 0 ? round(Math.min(1, totalWaitMs / windowMs), 4) : 0,
      overThreshold: e?.overThreshold ?? 0,
      involuntary: e?.involuntary ?? 0,
      voluntary: e?.voluntary ?? 0,
      buckets: usBuckets(slots),
      slots,
    };
  });
  threads.sort(byWorst);

  const isQemu = sel.process !== null && QEMU_RE.test(sel.process);
  const ofClass = (c: ThreadClass) => threads.filter((t) => t.class === c);
  const identifiedBy = (c: 'vcpu' | 'vhost', ids: number[] | null | undefined): Identification => ((ids ?? []).length > 0 ? 'tids' : ofClass(c).length > 0 ? 'names' : 'none');
  const identified = { vcpu: identifiedBy('vcpu', sel.vcpuTids), vhost: identifiedBy('vhost', sel.vhostTids) };
  // An empty class is no evidence: say so where the caller was looking for vCPUs.
  const vcpuUnknown = identified.vcpu === 'none' && (sel.vcpuTids != null || isQemu);
  if (vcpuUnknown) notes.push('no vCPU thread identified: none is named `CPU <n>/KVM` (QEMU without debug-threads=on) and vcpu_tids named none; the vCPU class is empty, which says nothing about vCPU starvation');
  const classes: Record<ThreadClass, RunqlatClass> = {
    vcpu: aggregate('vCPU threads', ofClass('vcpu')),
    vhost: aggregate('vhost threads', ofClass('vhost')),
    other: aggregate(isQemu ? 'other QEMU threads' : 'other threads', ofClass('other')),
  };
  const all = aggregate('threads', threads);
  // What severity and `worst` look at: the threads that move a VM's packets when there are any.
  const vmThreads = threads.filter((t) => t.class !== 'other');
  const relevant = vmThreads.length > 0 ? vmThreads : threads;
  const worstThread = relevant.filter((t) => t.count > 0).sort(byWorst)[0];
  const worst = worstThread
    ? { tid: worstThread.tid, comm: worstThread.comm, class: worstThread.class, p99Us: worstThread.p99Us, maxUs: worstThread.maxUs, waitShare: worstThread.waitShare }
    : null;

  const stopped = overhead?.stopped;
  if (stopped) notes.push(`stopped early: ${stopped}; the histograms cover the ${(windowMs / 1000).toFixed(1)}s before`);
  if (dump.noStart > 0) notes.push(`${dump.noStart} waits were not timed: the start map was full`);
  if (dump.noThread > 0) notes.push(`${dump.noThread} waits were timed but not kept: the per-thread map was full`);
  if (att.method === 'tracepoint' && sel.filter === 'tgid') {
    notes.push('classic tracepoints carry no process id: threads the process started during the window are timed only once they were first switched out');
  }
  const gone = sel.threads.filter((t) => !seen.has(t.tid)).length;
  if (gone > 0 && sel.filter !== 'all') notes.push(`${gone} of the ${sel.threads.length} threads chosen were never switched in or out (idle, or busy on a CPU of their own, the whole window)`);

  const data: RunqlatData = {
    target: { pid: sel.pid, process: sel.process, comm: sel.comm, filter: sel.filter, tids: sel.filter === 'tids' ? sel.targets : sel.threads.filter((t) => t.kernelThread).map((t) => t.tid) },
    ...loadedFields(att),
    windowMs,
    thresholdUs,
    ...(overhead ? { overhead } : {}),
    ...(stopped ? { stopped } : {}),
    count: all.count,
    p50Us: all.p50Us,
    p95Us: all.p95Us,
    p99Us: all.p99Us,
    maxUs: all.maxUs,
    classes,
    identified,
    worst,
    threads: threads.slice(0, top).map(({ slots: _slots, ...t }) => t),
    threadCount: threads.length,
    lost: { starts: dump.noStart, threads: dump.noThread },
    notes,
  };

  // Summary: "vCPU threads of pid 1234 waited p99 8.2 ms for a CPU (CPU 0/KVM worst, ...)".
  const lead = classes.vcpu.count > 0 ? classes.vcpu : all;
  const leadThreads = lead === all ? threads : ofClass('vcpu');
  const leadWorst = leadThreads.filter((t) => t.count > 0).sort(byWorst)[0];
  const secs = `${(windowMs / 1000).toFixed(1)}s`;
  const what = lead === all ? 'threads' : 'vCPU threads';
  const scope = sel.pid !== null ? ` of pid ${sel.pid}` : sel.filter === 'all' ? ' of this host' : sel.comm === null ? ` (tids ${sel.targets.slice(0, 5).join(', ')}${sel.targets.length > 5 ? `, +${sel.targets.length - 5} more` : ''})` : ` named /${sel.comm}/`;
  const whose = `${what}${scope}`;
  let summary: string;
  if (all.count === 0) {
    summary = `no ${whose} waited for a CPU in ${secs} (${threads.length} thread${threads.length === 1 ? '' : 's'} watched)`;
  } else {
    const share = leadWorst && leadWorst.waitShare >= 0.01 ? `, runnable but not running ${pct(leadWorst.waitShare)} of the time` : '';
    const who = leadWorst ? ` (${leadWorst.comm || `tid ${leadWorst.tid}`} worst${share})` : '';
    summary = `${whose} waited p99 ${fmtWait(lead.p99Us)} for a CPU, max ${fmtWait(lead.maxUs)}${who}; ${lead.count} waits in ${secs}`;
    if (lead === classes.vcpu && classes.vhost.count > 0) summary += `; vhost p99 ${fmtWait(classes.vhost.p99Us)}`;
    const open = leadThreads.filter((t) => t.waitingAtEndUs > 0);
    if (open.length > 0) summary += `; ${open.length} still waiting at the end (longest ${fmtWait(Math.max(...open.map((t) => t.waitingAtEndUs)))})`;
  }
  if (vcpuUnknown) summary += '; no vCPU thread identified';
  if (stopped) summary += ` (stopped: ${stopped})`;

  let severity: ProbeResult['severity'] = 'info';
  if (worst) {
    if (worst.p99Us > thresholdUs * CRITICAL_FACTOR || worst.waitShare >= CRITICAL_SHARE) severity = 'critical';
    else if (worst.p99Us > thresholdUs) severity = 'warning';
  }

  const charts: ChartSpec[] = (['vcpu', 'vhost', 'other'] as const)
    .filter((c) => classes[c].count > 0)
    .map((c) => histogram(`${classes[c].label}: wait for a CPU (log2 buckets)`, classes[c].buckets, classes[c]));
  if (worstThread && relevant.length > 1) {
    charts.push(histogram(`${worstThread.comm} (tid ${worstThread.tid}), the worst: wait for a CPU (log2 buckets)`, worstThread.buckets, worstThread));
  }
  const f = fmtWait;
  const tables: TableSpec[] = [
    {
      title: 'Wait for a CPU per thread class (percentiles at log2 bucket resolution, capped at max)',
      columns: ['class', 'threads', 'waits', 'P50', 'P95', 'P99', 'max', 'total wait ms', 'mean wait share', 'max wait share', `waits ≥ ${fmtWait(thresholdUs)}`, 'involuntary', 'voluntary', 'worst'],
      rows: (['vcpu', 'vhost', 'other'] as const)
        .filter((c) => classes[c].threads > 0)
        .map((c) => {
          const k = classes[c];
          return [k.label, k.threads, k.count, f(k.p50Us), f(k.p95Us), f(k.p99Us), f(k.maxUs), k.totalWaitMs, pct(k.waitShare), pct(k.maxWaitShare), k.overThreshold, k.involuntary, k.voluntary, k.worst ? `${k.worst.comm} (${k.worst.tid})` : ''];
        }),
    },
    {
      title: `Wait for a CPU per thread (worst P99 first${threads.length > top ? `, ${top} of ${threads.length}` : ''})`,
      columns: ['tid', 'name', 'class', 'waits', 'P50', 'P95', 'P99', 'max', 'total wait ms', 'wait share', `waits ≥ ${fmtWait(thresholdUs)}`, 'involuntary', 'voluntary'],
      rows: data.threads.map((t) => [t.tid, t.comm, t.class, t.count, f(t.p50Us), f(t.p95Us), f(t.p99Us), f(t.maxUs), t.totalWaitMs, pct(t.waitShare), t.overThreshold, t.involuntary, t.voluntary]),
    },
    ...loadedTables(att, overhead),
  ];
  return { data, summary, severity, charts, tables };
}

export const cpuRunqlat: ProbeDefinition<RunqlatData> = {
  id: 'cpu.runqlat',
  title: 'Run-queue latency: threads waiting for a CPU',
  description: `Times how long threads wait for a CPU: from becoming runnable (woken by \`sched:sched_wakeup\` / \`sched_wakeup_new\`, or switched out while still runnable, i.e. preempted) to being switched in (\`sched:sched_switch\`), aggregated in the kernel per thread as a log2 histogram, with the total and longest wait, the waits over \`threshold_us\` and the voluntary and involuntary context switches, for \`duration\`.

Use it when a VM drops or delays packets and the host looks busy: a tap's \`FULL_RING\` drops (\`drops.kernel\`) mean the guest does not drain its RX ring, which happens when its vCPU thread is runnable but not running; a starved vhost worker delays both directions. Give \`pid\` (the QEMU process: all its threads, also those it starts during the window) and optionally \`comm\` (a regex on thread names: \`^CPU \\d+/\` for vCPUs, \`^vhost-\` for vhost workers), or \`tids\`. Without either, every thread of the host is measured. Threads are grouped into vCPU threads, vhost workers and the others: by id when \`vcpu_tids\` / \`vhost_tids\` name them (a QEMU without \`debug-threads=on\` names every thread \`qemu-system-x86\`), else by name (\`CPU <n>/KVM\`, \`CPU <n>/TCG\`; \`vhost-<pid>\`, also kernel threads before Linux 6.4). \`identified.vcpu\` and \`identified.vhost\` say which (\`tids\`, \`names\`, \`none\`): an empty class that nothing identified is no evidence that those threads did not wait.

A thread still runnable when the window closes (woken or preempted, not yet switched in) counts that wait with its length so far (\`waitingAtEndUs\`): a vCPU the CPU never reached is the worst wait, not none. A thread of \`pid\` or \`tids\` already runnable when the window opens waits from the opening (unless it was running: its run time in \`/proc/<tid>/schedstat\` tells). Wake-ups of a thread still on its CPU (it had not gone to sleep) start no wait.

Percentiles are estimates at log2 bucket resolution (the upper bound of the bucket holding them, capped at the exact maximum). \`waitShare\` is the share of the window a thread spent runnable but not running. Loads raw_tp programs with a cached minimal BTF (falls back to tp_btf, then to the classic tracepoints). The scheduler tracepoints fire for every thread of the host; the programs filter first (~0.1-0.2 µs per context switch of the host with \`pid\` or \`tids\`, ~0.5 µs when every thread is measured). Past the overhead budget (5% of a CPU, 1M program runs/s; \`--budget\` changes it) the session stops early and keeps its histograms.

Replaces the seed's \`cpu/sched_latency_monitor.sh\` (\`perf sched record\` + \`perf sched latency\`, PROBES.md row 5).`,
  normal: `On a host with idle CPUs a woken thread runs within a few to tens of microseconds: P99 below ~1 ms, waits a fraction of a percent of the window. vCPU threads of a busy guest on a loaded host may see P99 of a few ms. P99 above \`threshold_us\` (1 ms) is a warning; above 10× that, or a vCPU/vhost thread runnable-but-waiting for 10% of the window or more, is critical: the host is overcommitted, or the thread is pinned to a CPU it shares with busy work.`,
  replaces: ['cpu/sched_latency_monitor.sh'],
  params: {
    pid: { type: 'integer', min: 1, description: 'The process whose threads to measure (all of them, also those started during the window; a QEMU process for a VM).', cliOption: 'pid' },
    tids: { type: 'string[]', description: 'Only these thread ids (of `pid` when both are given).' },
    vcpu_tids: {
      type: 'string[]',
      description:
        "The VM's vCPU threads by id (from QMP `query-cpus-fast`, libvirt, or KVM's guest time): they are the vCPU class whatever their names, and are measured besides what `pid`, `tids` and `comm` choose. Threads not listed are still classed by name. Given empty with no thread named like a vCPU: the class is empty and `identified.vcpu` is `none`.",
    },
    vhost_tids: {
      type: 'string[]',
      description: "The VM's vhost workers by id (threads of `pid`, or kernel threads before Linux 6.4): the vhost class whatever their names, measured besides the others.",
    },
    comm: { type: 'string', description: 'Only threads whose name matches this regular expression, chosen when the probe starts (`^CPU \\d+/` for vCPU threads, `^vhost-` for vhost workers).' },
    duration: durationParam('How long to measure.', { max: 3_600_000 }),
    threshold_us: { type: 'integer', default: DEFAULT_THRESHOLD_US, min: 1, max: 60_000_000, description: 'Waits of at least this many µs are counted exactly per thread; a P99 above it is a warning, above 10× critical.' },
    top: topParam('How many threads to list (worst P99 first).', { default: 20, max: 10_000 }),
  },
  ...tracepointRun(TRACEPOINTS.map((tp) => `sched:${tp}`), RUNQLAT_BUDGET),
  memory: { resized: { threads: HOST_THREADS, start: HOST_STARTS } },
  data: DATA,
  collect,
  parse,
};
