// The `bpftrace` probe driver: runs a probe's probes/<id>/<id>.bt with `bpftrace -f json`, records what it
// printed, how it attached and what its programs cost, and parses what bpftrace 0.17 prints
// into maps, histograms, printf lines and lost-event counts.
//
// bpftrace is spawned by the driver itself, inside an `io.capture` session (its pid is needed
// to read its programs from /proc/<pid>/fdinfo), so a replay answers the run from the
// recording without running bpftrace. The script text is passed with `-e` (so that the argv
// recorded in `<name>-attach` holds the exact program that ran, and a replay on another
// install path still matches). Parameters are never spliced into the text: they are bpftrace positional
// arguments. `$1` is always the duration in milliseconds and a script ends with
// `interval:ms:$1 { exit(); }`; the probe's own values follow as `$2`, `$3`...
//
// What bpftrace 0.17 prints with `-f json` (checked on this host), one JSON object a line:
//   {"type": "attached_probes", "data": {"probes": 5}}        printed once the script is
//                                                             compiled, just before the
//                                                             programs are loaded and attached
//   {"type": "printf", "data": "hello 0\n"}
//   {"type": "map", "data": {"@enq": {"538": 52}}}            keyed map (keys are strings)
//   {"type": "map", "data": {"@s": 1}}                        scalar map
//   {"type": "map", "data": {"@k": {"1,a": 1}}}               several keys joined with ","
//   {"type": "hist", "data": {"@h": [{"min": 4, "max": 7, "count": 51}]}}
//   {"type": "hist", "data": {"@h": {"538": [{"min": 1, "max": 1, "count": 1}, ...]}}}
//   {"type": "hist", "data": {"@n": [{"max": -1, "count": 1}, {"min": 0, "max": 0, ...}]}}
//                                                             the negative bucket has no "min"
//   {"type": "stats", "data": {"@avg": 3}}                    avg(); stats() gives an object
//   {"type": "lost_events", "data": {"events": 12}}
// plus empty lines (printed for maps that are empty at exit). Warnings such as
// "couldn't set RLIMIT_MEMLOCK" go to stderr with exit status 0.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { formatMs } from '../duration.js';
import { programRunStats, type ProgramRunStats } from '../native/stats.js';
import { packageRoot } from '../package-info.js';
import { guardPrograms, overheadOf, overheadTable, totalsOf, type GuardSession, type OverheadBudget, type OverheadReport } from './overhead.js';
import type { ProbeIO, RawRecord, Requirement, TableSpec } from './types.js';

/** What every bpftrace probe needs; a probe adds its tracepoints. */
export const BPFTRACE_REQUIREMENTS: Requirement[] = [
  { kind: 'root' },
  { kind: 'binary', name: 'bpftrace', package: 'bpftrace' },
  { kind: 'kernel', feature: 'tracepoints' },
];

/** How long bpftrace may take beyond the window to compile, attach and print (about 1 s here). */
export const BPFTRACE_GRACE_MS = 15_000;
/** The most keys a bpftrace map holds: its memory bound (the probes' READMEs state it). */
export const BPFTRACE_MAP_KEYS = 4096;

export interface BpftraceRunOptions {
  /** The measuring window: passed as `$1`, ended by the script's `interval:ms:$1 { exit(); }`. */
  durationMs: number;
  /** Further positional arguments, `$2`, `$3`... in order. */
  vars?: Array<string | number>;
  /** Overrides durationMs + BPFTRACE_GRACE_MS. */
  timeoutMs?: number;
}

/** The folder of a shipped bpftrace script: its probe's (`qdisc.latency.bt` → probes/qdisc.latency/). */
export function bpftraceScriptDir(scriptFile: string): string {
  return join(packageRoot(), 'probes', scriptFile.replace(/\.bt$/, ''));
}

/** The text of probes/<id>/<id>.bt for `<id>.bt` (a bare file name), or of an absolute path (tests). */
export function loadBpftraceScript(scriptFile: string): string {
  if (!scriptFile.startsWith('/') && !/^[A-Za-z0-9._-]+\.bt$/.test(scriptFile)) {
    throw new TypeError(`bpftrace script must be <probe id>.bt (in the probe's folder) or an absolute path: ${scriptFile}`);
  }
  const path = scriptFile.startsWith('/') ? scriptFile : join(bpftraceScriptDir(scriptFile), scriptFile);
  return readFileSync(path, 'utf8');
}

/** The argv that runs `script` for `opts` (exported for tests). */
export function bpftraceArgv(script: string, opts: BpftraceRunOptions): string[] {
  if (!Number.isSafeInteger(opts.durationMs) || opts.durationMs < 1) {
    throw new RangeError(`bpftrace duration must be a whole number of ms >= 1, got ${opts.durationMs}`);
  }
  const vars = (opts.vars ?? []).map((v) => {
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new RangeError(`bpftrace positional argument is not an integer: ${v}`);
    return String(v);
  });
  return ['bpftrace', '-f', 'json', '-e', script, String(opts.durationMs), ...vars];
}

/** How long bpftrace may take to exit after SIGINT (it detaches and prints its maps: ~0.2 s here) before SIGKILL. */
export const BPFTRACE_KILL_GRACE_MS = 2000;
/** How often SIGINT is repeated until bpftrace starts detaching (see spawnBpftrace). */
const BPFTRACE_SIGINT_REPEAT_MS = 150;
/** Output beyond this stops bpftrace (and fails the run): a probe's maps are small. */
const MAX_STDOUT_BYTES = 64 * 1024 * 1024;
const MAX_STDERR_CHARS = 64 * 1024;
/** After attached_probes, how long to wait for bpftrace's programs to show in /proc/<pid>/fdinfo. */
const LOAD_WAIT_MS = 5000;
const LOAD_POLL_MS = 10;
/** When the script's program count is not known (wildcards), the count is taken once it held this long. */
const LOAD_SETTLE_MS = 200;

/** The kernel's BPF program types (enum bpf_prog_type), named as bpftool names them. */
const PROG_TYPES = [
  'unspec', 'socket_filter', 'kprobe', 'sched_cls', 'sched_act', 'tracepoint', 'xdp', 'perf_event', 'cgroup_skb',
  'cgroup_sock', 'lwt_in', 'lwt_out', 'lwt_xmit', 'sock_ops', 'sk_skb', 'cgroup_device', 'sk_msg', 'raw_tracepoint',
  'cgroup_sock_addr', 'lwt_seg6local', 'lirc_mode2', 'sk_reuseport', 'flow_dissector', 'cgroup_sysctl',
  'raw_tracepoint_writable', 'cgroup_sockopt', 'tracing', 'struct_ops', 'ext', 'lsm', 'sk_lookup', 'syscall', 'netfilter',
];

/** The name of a program type number: 2 kprobe (kprobes, uprobes, usdt), 5 tracepoint, 7 perf_event, 17 raw_tracepoint, 26 tracing. */
export function progTypeName(type: number): string {
  return PROG_TYPES[type] ?? `prog_type ${type}`;
}

/**
 * The program type bpftrace 0.17 loads for each kind of probe (long and short names); null for
 * BEGIN/END, which bpftrace runs itself at start and exit and which hold no program meanwhile.
 */
const PROBE_PROG_TYPE: Record<string, number | null> = {
  BEGIN: null,
  END: null,
  tracepoint: 5,
  t: 5,
  kprobe: 2,
  k: 2,
  kretprobe: 2,
  kr: 2,
  uprobe: 2,
  u: 2,
  uretprobe: 2,
  ur: 2,
  usdt: 2,
  U: 2,
  interval: 7,
  i: 7,
  profile: 7,
  p: 7,
  software: 7,
  s: 7,
  hardware: 7,
  h: 7,
  rawtracepoint: 17,
  rt: 17,
  kfunc: 26,
  f: 26,
  kretfunc: 26,
  fr: 26,
};

/**
 * The attach points a bpftrace script lists, in order (`tracepoint:qdisc:qdisc_enqueue`,
 * `interval:ms:$1`, `END`): probe headers at the top level, without their predicates.
 * Comments, strings, `#include` lines and struct definitions are skipped.
 */
export function scriptProbes(script: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let header = '';
  const take = () => {
    const h = header.replace(/^[\s;]+/, '').trim();
    header = '';
    if (h === '' || /^(struct|union|enum)\s/.test(h)) return;
    const predicate = /(^|\s)\//.exec(h);
    const points = predicate ? h.slice(0, predicate.index) : h;
    out.push(...points.split(',').map((p) => p.trim()).filter((p) => p !== ''));
  };
  for (let i = 0; i < script.length; i++) {
    const c = script[i]!;
    if (c === '/' && script[i + 1] === '/') {
      while (i < script.length && script[i] !== '\n') i++;
      if (depth === 0) header += '\n';
      continue;
    }
    if (c === '/' && script[i + 1] === '*') {
      const end = script.indexOf('*/', i + 2);
      i = end < 0 ? script.length : end + 1;
      if (depth === 0) header += ' ';
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < script.length && script[j] !== '"') j += script[j] === '\\' ? 2 : 1;
      if (depth === 0) header += script.slice(i, j + 1);
      i = j;
      continue;
    }
    if (depth === 0 && c === '#' && header.trim() === '') {
      while (i < script.length && script[i] !== '\n') i++;
      continue;
    }
    if (c === '{') {
      if (depth === 0) take();
      depth++;
    } else if (c === '}') depth = Math.max(0, depth - 1);
    else if (depth === 0) header += c;
  }
  return out;
}

/** One BPF program bpftrace held loaded while it traced. */
export interface BpftraceProgram {
  progId: number;
  /** The kernel's program type number (`prog_type` in /proc/<pid>/fdinfo). */
  progType: number;
  /**
   * The attach method, named from the program type: `tracepoint` (tracepoint:), `kprobe`
   * (kprobe:, uprobe:, usdt:), `perf_event` (interval:, profile:, software:, hardware:),
   * `raw_tracepoint` (rawtracepoint:), `tracing` (kfunc:).
   */
  method: string;
  /**
   * The script's attach point this program runs for, positional arguments filled in
   * (`tracepoint:qdisc:qdisc_enqueue`, `interval:ms:4000`). Set when the script's probe list
   * maps one to one onto the programs (bpftrace loads them in script order) and every
   * program's type fits its probe; absent otherwise (wildcards, usdt with several locations).
   */
  target?: string;
}

/** The `<name>-attach` capture record: how the bpftrace process ran. */
export interface BpftraceRunRecord {
  /** The exact argv, script text included. */
  argv: string[];
  pid: number | null;
  /** The script's attach points (scriptProbes), positional arguments filled in. */
  probes: string[];
  /** ms from spawn to the attached_probes line (parse + LLVM compile + map creation). */
  attachMs: number | null;
  /** ms from spawn until all programs were seen loaded in /proc/<pid>/fdinfo. */
  loadedMs: number | null;
  programs: BpftraceProgram[];
  /** ms the programs ran: from loaded until bpftrace was stopped or exited, at most the window. */
  windowMs: number | null;
  exitCode: number | null;
  signal: string | null;
  /** Why ebpfnet stopped bpftrace (SIGINT, then SIGKILL after a grace), when it did. */
  stopped?: 'overhead' | 'abort' | 'timeout' | 'output';
  stderr: string;
  /** The one-line reason the run failed. */
  error?: string;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Runs bpftrace on `scriptFile` (in bpf/) for `durationMs` through `io`, and returns the
 * capture record `name` holding its stdout (read it with `parseBpftraceJson(record.stdout)`,
 * or the whole run with `readBpftrace(records, name)`).
 *
 * bpftrace is spawned inside `io.capture(name)`, so that its pid is known: its programs are
 * read from /proc/<pid>/fdinfo once it says it attached (the attach facts), and, when the IO
 * has an overhead budget, their run statistics are watched while it runs; past the budget
 * bpftrace gets SIGINT, detaches, prints its maps and exits early. An aborted probe stops
 * bpftrace the same way (SIGKILL after BPFTRACE_KILL_GRACE_MS) and keeps its partial stdout.
 * Two more captures record the run: `<name>-attach` (argv, pid, attach facts, exit, stderr:
 * BpftraceRunRecord) and `<name>-overhead` (OverheadReport, null without a budget). A replay
 * answers all three from the recording and re-parses identically. A failed run throws a
 * one-line error after it is recorded.
 */
export async function runBpftrace(io: ProbeIO, name: string, scriptFile: string, opts: BpftraceRunOptions): Promise<RawRecord> {
  const argv = bpftraceArgv(loadBpftraceScript(scriptFile), opts);
  const label = basename(scriptFile);
  const timeoutMs = opts.timeoutMs ?? opts.durationMs + BPFTRACE_GRACE_MS;
  const budget = io.budget;
  const run = deferred<{ record: BpftraceRunRecord; overhead: OverheadReport | null }>();
  // Started together (in this order) so that the attach facts are recorded even when the
  // probe is aborted meanwhile; a replay answers them in the same order.
  const out = io.capture(name, async (signal) => {
    try {
      const r = await spawnBpftrace(argv, label, { signal, timeoutMs, budget, durationMs: opts.durationMs });
      run.resolve(r);
      return r.stdout;
    } catch (err) {
      run.reject(err);
      throw err;
    }
  });
  const attach = io.capture(`${name}-attach`, async () => JSON.stringify((await run.promise).record));
  const overhead = io.capture(`${name}-overhead`, async () => JSON.stringify((await run.promise).overhead));
  const [rec, att] = await Promise.all([out, attach, overhead]);
  const ran = JSON.parse(att.stdout) as BpftraceRunRecord;
  if (!isDeepStrictEqual(ran.argv, argv)) {
    throw new Error(
      ran.argv?.[4] !== argv[4]
        ? `replay mismatch: ${name} was recorded running another version of ${label}`
        : `replay mismatch: ${name} was recorded running ${label} with arguments ${JSON.stringify(ran.argv?.slice(5))}, not ${JSON.stringify(argv.slice(5))}`,
    );
  }
  if (ran.error !== undefined) throw new Error(ran.error);
  return rec;
}

interface SpawnOptions {
  signal: AbortSignal;
  /** The script's window: it exits by itself this long after its programs are attached. */
  durationMs: number;
  timeoutMs: number;
  budget: OverheadBudget | null;
}

async function spawnBpftrace(
  argv: string[],
  label: string,
  o: SpawnOptions,
): Promise<{ stdout: string; record: BpftraceRunRecord; overhead: OverheadReport | null }> {
  const positional = argv.slice(5);
  const probes = scriptProbes(argv[4] ?? '').map((p) => p.replace(/\$(\d+)/g, (m, n: string) => positional[Number(n) - 1] ?? m));
  const plan = programPlan(probes);
  const record: BpftraceRunRecord = { argv, pid: null, probes, attachMs: null, loadedMs: null, programs: [], windowMs: null, exitCode: null, signal: null, stderr: '' };
  const started = performance.now();
  const since = (t: number) => Math.round((t - started) * 10) / 10;

  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C', BPFTRACE_MAP_KEYS_MAX: String(BPFTRACE_MAP_KEYS) } });
  record.pid = child.pid ?? null;
  let exited = false;
  let stoppedAt: number | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let guard: GuardSession | undefined;
  let loading: Promise<void> = Promise.resolve();
  let loadedAt: number | undefined;

  // bpftrace 0.17 notices SIGINT only when it interrupts its epoll_wait: one that lands while
  // it attaches, or between two waits, sets its flag and is then ignored until the window
  // ends. So SIGINT is sent again every BPFTRACE_SIGINT_REPEAT_MS for as long as all its
  // programs are still attached (once it leaves the loop it detaches them, then runs END and
  // prints its maps), and SIGKILL follows after BPFTRACE_KILL_GRACE_MS.
  let fds: number[] | undefined;
  let resend: NodeJS.Timeout | undefined;
  const stop = (why: NonNullable<BpftraceRunRecord['stopped']>) => {
    if (exited || record.stopped !== undefined) return;
    record.stopped = why;
    stoppedAt = performance.now();
    child.kill('SIGINT');
    let checking = false;
    resend = setInterval(() => {
      if (exited || checking || child.pid === undefined) return;
      checking = true;
      void (fds ? programRunStats(child.pid, fds) : Promise.resolve(null))
        .then((now) => {
          if (now && fds && now.length < fds.length) clearInterval(resend);
          else if (!exited) child.kill('SIGINT');
        })
        .finally(() => (checking = false));
    }, BPFTRACE_SIGINT_REPEAT_MS);
    killTimer = setTimeout(() => child.kill('SIGKILL'), BPFTRACE_KILL_GRACE_MS);
  };

  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
    // Only a failed spawn ends the run here; a failed kill is followed by close as usual.
    child.on('error', (error) => {
      if (child.pid === undefined) resolve({ code: null, signal: null, error });
    });
  });

  // Programs appear in fdinfo right after the attached_probes line (bpftrace prints it, then
  // loads and attaches each probe's program): poll until all are there.
  const watchPrograms = async (pid: number) => {
    const deadline = performance.now() + LOAD_WAIT_MS;
    let seen: ProgramRunStats[] = [];
    let changedAt = performance.now();
    for (;;) {
      const list = await programRunStats(pid);
      const now = performance.now();
      if (list.length !== seen.length) changedAt = now;
      if (list.length >= seen.length) seen = list;
      const complete = plan.expected !== null ? seen.length >= plan.expected : seen.length > 0 && now - changedAt >= LOAD_SETTLE_MS;
      // Also when bpftrace is being stopped: what it loaded is part of the evidence.
      if (complete || exited || now > deadline) break;
      await delay(LOAD_POLL_MS);
    }
    record.programs = describePrograms(seen, plan.targets);
    if (exited || seen.length === 0) return;
    fds = seen.map((p) => p.fd);
    loadedAt = changedAt;
    record.loadedMs = since(changedAt);
    if (o.budget && record.stopped === undefined) {
      const held = fds;
      guard = await guardPrograms(o.budget, async () => {
        const now = await programRunStats(pid, held);
        // bpftrace detaches program by program as it exits: a partial sum is no sample.
        if (now.length < held.length) throw new Error('bpftrace is detaching');
        return totalsOf(now);
      });
      guard.signal.addEventListener('abort', () => stop('overhead'), { once: true });
    }
  };

  let stdout = '';
  let stdoutBytes = 0;
  let partial = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text: string) => {
    stdoutBytes += Buffer.byteLength(text);
    if (stdoutBytes > MAX_STDOUT_BYTES) return stop('output');
    stdout += text;
    if (record.attachMs !== null) return;
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    if (lines.some(isAttachedLine)) {
      record.attachMs = since(performance.now());
      if (child.pid !== undefined) loading = watchPrograms(child.pid).catch(() => undefined);
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    if (record.stderr.length < MAX_STDERR_CHARS) record.stderr = (record.stderr + text).slice(0, MAX_STDERR_CHARS);
  });

  const onAbort = () => stop('abort');
  if (o.signal.aborted) onAbort();
  else o.signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => stop('timeout'), o.timeoutMs);

  let end: Awaited<typeof ended>;
  try {
    end = await ended;
  } finally {
    const exitAt = performance.now();
    exited = true;
    clearTimeout(timer);
    clearTimeout(killTimer);
    clearInterval(resend);
    o.signal.removeEventListener('abort', onAbort);
    await loading;
    // The script ends its own window `durationMs` after attaching; printing its maps after that
    // is not part of it.
    if (loadedAt !== undefined) record.windowMs = Math.round(Math.max(0, Math.min(o.durationMs, (stoppedAt ?? exitAt) - loadedAt)) * 10) / 10;
  }
  const overhead = guard ? await guard.stop() : null;
  record.exitCode = end.code ?? (end.signal ? 128 + (osConstants.signals[end.signal] ?? 0) : end.error ? 127 : null);
  record.signal = end.signal;
  const error = runError(record, end, label, o.timeoutMs);
  if (error !== undefined) record.error = error;
  return { stdout, record, overhead };
}

function isAttachedLine(line: string): boolean {
  if (!line.includes('attached_probes')) return false;
  try {
    const obj: unknown = JSON.parse(line);
    return isObject(obj) && obj.type === 'attached_probes';
  } catch {
    return false;
  }
}

/** How many programs the script's probes hold while tracing, and their targets in load order; null when not known. */
function programPlan(probes: string[]): { expected: number | null; targets: Array<{ target: string; progType: number }> | null } {
  const targets: Array<{ target: string; progType: number }> = [];
  for (const p of probes) {
    const kind = p.split(':')[0]!;
    const type = PROBE_PROG_TYPE[kind];
    if (type === undefined || /[*?[{]/.test(p)) return { expected: null, targets: null };
    if (type !== null) targets.push({ target: p, progType: type });
  }
  return { expected: targets.length, targets };
}

function describePrograms(progs: ProgramRunStats[], targets: Array<{ target: string; progType: number }> | null): BpftraceProgram[] {
  const fits = targets !== null && targets.length === progs.length && progs.every((p, i) => p.progType === targets[i]!.progType);
  return progs.map((p, i) => ({
    progId: p.progId,
    progType: p.progType,
    method: progTypeName(p.progType),
    ...(fits ? { target: targets[i]!.target } : {}),
  }));
}

function runError(r: BpftraceRunRecord, end: { code: number | null; signal: NodeJS.Signals | null; error?: Error }, label: string, timeoutMs: number): string | undefined {
  const who = `bpftrace (${label})`;
  if (end.error) return `bpftrace could not start: ${firstLine(end.error.message)}`;
  if (r.stopped === 'abort') return `${who} was stopped: the probe was aborted`;
  if (r.stopped === 'timeout') return `${who} timed out after ${formatMs(timeoutMs)}`;
  if (r.stopped === 'output') return `${who} printed more than ${MAX_STDOUT_BYTES} bytes`;
  if (end.code === 0) return undefined;
  if (r.stopped === 'overhead' && end.signal === 'SIGKILL') {
    return `${who} did not exit within ${formatMs(BPFTRACE_KILL_GRACE_MS)} of SIGINT (stopped for overhead) and was killed`;
  }
  const why = bpftraceError(r.stderr, label);
  const how = end.code !== null ? `exited with code ${end.code}` : `was killed by ${end.signal ?? 'a signal'}`;
  return `${who} ${how}${why ? `: ${why}` : ''}`;
}

/**
 * The line of bpftrace's stderr that says why it failed: its first ERROR other than the
 * RLIMIT_MEMLOCK notice (printed on every run where the limit cannot be raised), with the
 * `stdin:L:C` (or `stdin:L-L`) of a `-e` script named after the script file. Empty when stderr says nothing.
 */
export function bpftraceError(stderr: string, label: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.includes('RLIMIT_MEMLOCK'));
  const line = lines.find((l) => /\bERROR:/.test(l)) ?? lines[0] ?? '';
  const located = /^stdin:(\d[\d:-]*):\s*ERROR:\s*(.*)$/.exec(line);
  const text = located ? `${label}:${located[1]}: ${located[2]}` : line.replace(/^ERROR:\s*/, '');
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

function firstLine(text: string): string {
  return (text.split('\n').find((l) => l.trim() !== '') ?? '').trim();
}

/** What a finding says about its bpftrace run: attach facts, overhead, how it ended. */
export interface BpftraceAttach {
  /**
   * ms from spawning bpftrace to its `attached_probes` line. bpftrace parses the script,
   * compiles it with LLVM and creates its maps in that time (about 1 s here); it loads and
   * attaches the programs right after (`loadedMs`).
   */
  attachMs: number | null;
  /** ms from spawning bpftrace until all its programs were seen loaded (/proc/<pid>/fdinfo). */
  loadedMs: number | null;
  /** The probes bpftrace said it attached (`attached_probes`): BEGIN and END included. */
  attachedProbes: number | null;
  /** The attach points the script lists, positional arguments filled in. */
  probes: string[];
  /**
   * BPF programs bpftrace held loaded while tracing: attachedProbes less the BEGIN/END probes,
   * which bpftrace runs itself at start and exit.
   */
  programCount: number;
  programs: BpftraceProgram[];
}

export interface BpftraceResult {
  output: BpftraceOutput;
  attach: BpftraceAttach;
  /** ms the programs ran: the window, or less when bpftrace was stopped early. */
  windowMs: number | null;
  /** What the programs cost (run statistics); null without a budget. */
  overhead: OverheadReport | null;
  /** Set when the overhead guard stopped bpftrace early: `overhead budget exceeded at 3.1% CPU (budget 2%) after 1.2s`. */
  stopped?: string;
}

/** The bpftrace run `runBpftrace` recorded as `name` (and `<name>-attach`, `<name>-overhead`). */
export function readBpftrace(records: RawRecord[], name: string): BpftraceResult {
  const find = (n: string) => {
    const rec = records.find((r) => r.op === 'capture' && r.name === n);
    if (!rec) throw new Error(`no ${n} record in the evidence`);
    if (rec.error !== undefined) throw new Error(rec.error);
    return rec;
  };
  const output = parseBpftraceJson(find(name).stdout);
  const run = JSON.parse(find(`${name}-attach`).stdout) as BpftraceRunRecord;
  const overhead = overheadOf(records, `${name}-`);
  return {
    output,
    attach: {
      attachMs: run.attachMs,
      loadedMs: run.loadedMs,
      attachedProbes: output.attachedProbes,
      probes: run.probes,
      programCount: run.programs.length,
      programs: run.programs,
    },
    windowMs: run.windowMs,
    overhead,
    ...(overhead?.stopped ? { stopped: overhead.stopped } : {}),
  };
}

/** The tables every bpftrace finding shows: its programs and attach time, and what they cost. */
export function bpftraceTables(r: BpftraceResult): TableSpec[] {
  const a = r.attach;
  const when = a.attachMs === null ? 'never attached' : `attached_probes ${a.attachMs} ms after start (compile included)`;
  const tables: TableSpec[] = [
    {
      title: `bpftrace programs: ${a.programCount}, ${when}`,
      columns: ['prog id', 'method', 'target', 'attach ms'],
      rows: a.programs.map((p) => [p.progId, p.method, p.target ?? '', a.attachMs ?? '']),
    },
  ];
  if (r.overhead) tables.push(overheadTable(r.overhead));
  return tables;
}

export interface HistBucket {
  /** Inclusive bounds; `low` is -Infinity for the negative bucket (bpftrace prints no min). */
  low: number;
  high: number;
  count: number;
}

export type MapValue = number | Record<string, unknown>;

export interface BpftraceOutput {
  /** From attached_probes; null when bpftrace never attached. */
  attachedProbes: number | null;
  /** Map name (with its `@`) → scalar value, or key (bpftrace's string) → value. */
  maps: Record<string, number | Record<string, MapValue>>;
  /** Unkeyed hist/lhist under key "" ; keyed ones under bpftrace's key string. */
  hists: Record<string, Record<string, HistBucket[]>>;
  /** avg()/stats() maps, as printed. */
  stats: Record<string, unknown>;
  /** printf output, one entry per printf call. */
  printf: string[];
  lostEvents: number;
  /** Lines of a type this parser does not know, kept rather than dropped. */
  other: unknown[];
}

/** Parses bpftrace 0.17's `-f json` stdout. Throws on a line that is not JSON. */
export function parseBpftraceJson(stdout: string): BpftraceOutput {
  const out: BpftraceOutput = { attachedProbes: null, maps: {}, hists: {}, stats: {}, printf: [], lostEvents: 0, other: [] };
  const lines = stdout.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new Error(`bpftrace output line ${i + 1} is not JSON (${(err as Error).message}): ${JSON.stringify(line.slice(0, 80))}`);
    }
    if (!isObject(obj) || typeof obj.type !== 'string') {
      out.other.push(obj);
      return;
    }
    const data = obj.data;
    switch (obj.type) {
      case 'attached_probes':
        out.attachedProbes = isObject(data) && typeof data.probes === 'number' ? data.probes : 0;
        return;
      case 'printf':
        if (typeof data === 'string') out.printf.push(data);
        return;
      case 'lost_events':
        out.lostEvents += isObject(data) && typeof data.events === 'number' ? data.events : 0;
        return;
      case 'map':
        if (isObject(data)) {
          for (const [map, value] of Object.entries(data)) {
            out.maps[map] = typeof value === 'number' ? value : isObject(value) ? (value as Record<string, MapValue>) : Number(value);
          }
        }
        return;
      case 'hist':
        if (isObject(data)) {
          for (const [map, value] of Object.entries(data)) {
            if (Array.isArray(value)) out.hists[map] = { '': buckets(value, map) };
            else if (isObject(value)) {
              out.hists[map] = Object.fromEntries(Object.entries(value).map(([key, b]) => [key, buckets(b, `${map}[${key}]`)]));
            }
          }
        }
        return;
      case 'stats':
        if (isObject(data)) Object.assign(out.stats, data);
        return;
      default:
        out.other.push(obj);
    }
  });
  return out;
}

function buckets(value: unknown, what: string): HistBucket[] {
  if (!Array.isArray(value)) throw new Error(`bpftrace histogram ${what} is not a list of buckets`);
  return value.map((b: unknown) => {
    if (!isObject(b) || typeof b.max !== 'number' || typeof b.count !== 'number') {
      throw new Error(`bpftrace histogram ${what} has a bucket without max/count: ${JSON.stringify(b)}`);
    }
    return { low: typeof b.min === 'number' ? b.min : -Infinity, high: b.max, count: b.count };
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A percentile (0..100) estimated from histogram buckets: the upper bound of the bucket in
 * which the p-th sample falls (so at bucket resolution, never below the true value). Null
 * when the histogram is empty.
 */
export function histPercentile(buckets: HistBucket[], p: number): number | null {
  const total = buckets.reduce((s, b) => s + b.count, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (const b of buckets) {
    seen += b.count;
    if (seen >= rank) return b.high;
  }
  return buckets[buckets.length - 1]!.high;
}
