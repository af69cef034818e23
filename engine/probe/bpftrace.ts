// The `bpftrace` probe driver: runs one of bpf/*.bt through `bpftrace -f json` as an
// observation of ProbeIO, and parses what bpftrace 0.17 prints into maps, histograms,
// printf lines and lost-event counts.
//
// The script text is passed with `-e` (so that the recorded argv holds the exact program
// that ran, and a replay on another install path still matches). Parameters are never
// spliced into the text: they are bpftrace positional arguments. `$1` is always the
// duration in milliseconds and a script ends with `interval:ms:$1 { exit(); }`; the
// probe's own values follow as `$2`, `$3`...
//
// What bpftrace 0.17 prints with `-f json` (checked on this host), one JSON object a line:
//   {"type": "attached_probes", "data": {"probes": 5}}
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
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../package-info.js';
import type { ProbeIO, RawRecord, Requirement } from './types.js';

/** What every bpftrace probe needs; a probe adds its tracepoints. */
export const BPFTRACE_REQUIREMENTS: Requirement[] = [
  { kind: 'root' },
  { kind: 'binary', name: 'bpftrace', package: 'bpftrace' },
  { kind: 'kernel', feature: 'tracepoints' },
];

/** How long bpftrace may take beyond the window to compile, attach and print (about 1 s here). */
export const BPFTRACE_GRACE_MS = 15_000;

export interface BpftraceRunOptions {
  /** The measuring window: passed as `$1`, ended by the script's `interval:ms:$1 { exit(); }`. */
  durationMs: number;
  /** Further positional arguments, `$2`, `$3`... in order. */
  vars?: Array<string | number>;
  /** Overrides durationMs + BPFTRACE_GRACE_MS. */
  timeoutMs?: number;
}

/** The folder holding the shipped bpftrace scripts. */
export function bpftraceScriptDir(): string {
  return join(packageRoot(), 'bpf');
}

/** The text of bpf/<scriptFile> (a bare file name, or an absolute path for tests). */
export function loadBpftraceScript(scriptFile: string): string {
  const path = scriptFile.startsWith('/') ? scriptFile : join(bpftraceScriptDir(), scriptFile);
  if (!scriptFile.startsWith('/') && !/^[A-Za-z0-9._-]+\.bt$/.test(scriptFile)) {
    throw new TypeError(`bpftrace script must be a file name in bpf/ ending in .bt: ${scriptFile}`);
  }
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

/**
 * Runs bpftrace on `scriptFile` (in bpf/) for `durationMs` through `io`, recorded as `name`;
 * read the result with `parseBpftraceJson(record.stdout)`. A failed run throws.
 */
export async function runBpftrace(io: ProbeIO, name: string, scriptFile: string, opts: BpftraceRunOptions): Promise<RawRecord> {
  const argv = bpftraceArgv(loadBpftraceScript(scriptFile), opts);
  return io.exec(name, argv, { timeoutMs: opts.timeoutMs ?? opts.durationMs + BPFTRACE_GRACE_MS });
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
