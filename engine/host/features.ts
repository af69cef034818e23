// Which kernel features the probes can rely on here, each with the evidence it was read from.
//
// Sources, combined per feature: /sys/kernel/btf/vmlinux; the perf PMUs under
// /sys/bus/event_source/devices; tracefs (kprobe_events, uprobe_events, events/); the kernel
// config (/proc/config.gz or /boot/config-<release>); `bpftool feature probe kernel -j`; and
// `bpftrace --info`, whose "kfunc" line is a real fentry load-and-attach but whose "kprobe"
// line only says the kprobe program type loads (it says yes on kernels without kprobes).
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { release } from 'node:os';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { runCommand } from '../exec.js';
import type { NativeFeatureReport } from '../native/features.js';
import { findBinary } from './binaries.js';
import { ensureTracefs, tracepointCategories, type TracefsStatus } from './tracefs.js';

/** The kernel features a probe can require (`{ kind: 'kernel', feature }`). */
export type KernelFeature = 'btf' | 'tracefs' | 'tracepoints' | 'kprobes' | 'fentry' | 'uprobes' | 'ringbuf';

export interface FeatureStatus {
  /** null when it could not be determined (see `how`). */
  present: boolean | null;
  /** The evidence used, or why it is unknown. */
  how: string;
}

export interface KernelConfigInfo {
  available: boolean;
  /** Where it was read from (`/proc/config.gz`, `/boot/config-6.1.0-18-amd64`), null when none. */
  source: string | null;
  how: string;
}

export interface FeatureReport {
  /** Kernel release (`uname -r`). */
  kernel: string;
  config: KernelConfigInfo;
  /** The tools whose output fed the detection (path, or null when absent or not run). */
  tools: { bpftool: string | null; bpftrace: string | null };
  btf: FeatureStatus;
  tracefs: FeatureStatus & { path: string | null; mountedByUs: boolean };
  tracepoints: FeatureStatus & { categories: string[] };
  kprobes: FeatureStatus;
  fentry: FeatureStatus;
  uprobes: FeatureStatus;
  ringbuf: FeatureStatus;
}

export const BTF_VMLINUX = '/sys/kernel/btf/vmlinux';
export const PMU_DIR = '/sys/bus/event_source/devices';

// ---------------------------------------------------------------- parsers (pure)

/** Kernel config text → option → value (`y`, `m`, a string, or `n` for "is not set"). */
export function parseKernelConfig(text: string): Map<string, string> {
  const options = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    if (unset) {
      options.set(unset[1]!, 'n');
      continue;
    }
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (set) options.set(set[1]!, set[2]!.replace(/^"(.*)"$/, '$1'));
  }
  return options;
}

/**
 * `bpftrace --info` text (bpftrace prints it on stderr) → section → key → value,
 * e.g. `info['Probe types']['kfunc'] === 'no'`.
 */
export function parseBpftraceInfo(text: string): Record<string, Record<string, string>> {
  const sections: Record<string, Record<string, string>> = {};
  let current: Record<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (!/^\s/.test(line)) {
      const name = line.trim().replace(/:$/, '');
      current = sections[name] ??= {};
      continue;
    }
    const m = /^\s+([^:]+):\s*(.*)$/.exec(line);
    if (m && current) current[m[1]!.trim()] = m[2]!.trim();
  }
  return sections;
}

export interface BpftoolProbe {
  mapTypes: Record<string, boolean>;
  programTypes: Record<string, boolean>;
  systemConfig: Record<string, unknown>;
}

/** `bpftool feature probe kernel -j` output → map and program types (`ringbuf` → true). */
export function parseBpftoolProbe(json: string): BpftoolProbe {
  const doc = JSON.parse(json) as Record<string, unknown>;
  const strip = (obj: unknown, re: RegExp): Record<string, boolean> => {
    const out: Record<string, boolean> = {};
    if (obj && typeof obj === 'object') {
      for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
        const m = re.exec(k);
        if (m && typeof v === 'boolean') out[m[1]!] = v;
      }
    }
    return out;
  };
  return {
    mapTypes: strip(doc.map_types, /^have_(.+)_map_type$/),
    programTypes: strip(doc.program_types, /^have_(.+)_prog_type$/),
    systemConfig: (doc.system_config as Record<string, unknown> | undefined) ?? {},
  };
}

/** `6.18.44-fc-v782` → [6, 18, 44]; null when it does not start with a version. */
export function parseKernelRelease(rel: string): [number, number, number] | null {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(rel);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : null;
}

function atLeast(v: [number, number, number] | null, major: number, minor: number): boolean | null {
  if (!v) return null;
  return v[0] > major || (v[0] === major && v[1] >= minor);
}

// ---------------------------------------------------------------- sources

interface KernelConfig {
  options: Map<string, string>;
  info: KernelConfigInfo;
}

let configPromise: Promise<KernelConfig> | undefined;

/** The running kernel's config, from /proc/config.gz, /boot/config-<release> or /lib/modules. Cached. */
export function kernelConfig(): Promise<KernelConfig> {
  configPromise ??= loadKernelConfig();
  return configPromise;
}

async function loadKernelConfig(): Promise<KernelConfig> {
  const rel = release();
  const tried: string[] = [];
  try {
    const gz = await readFile('/proc/config.gz');
    const text = (await promisify(gunzip)(gz)).toString('utf8');
    return { options: parseKernelConfig(text), info: { available: true, source: '/proc/config.gz', how: 'read /proc/config.gz' } };
  } catch (e) {
    tried.push(`/proc/config.gz (${errCode(e)})`);
  }
  for (const path of [`/boot/config-${rel}`, `/lib/modules/${rel}/config`]) {
    try {
      const text = await readFile(path, 'utf8');
      return { options: parseKernelConfig(text), info: { available: true, source: path, how: `read ${path}` } };
    } catch (e) {
      tried.push(`${path} (${errCode(e)})`);
    }
  }
  return { options: new Map(), info: { available: false, source: null, how: `no kernel config: ${tried.join(', ')}` } };
}

function errCode(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' ? 'absent' : code === 'EACCES' ? 'not readable' : (code ?? String(e));
}

function configSays(cfg: KernelConfig, option: string): { value: 'y' | 'm' | 'n' | 'other' | null; text: string } {
  if (!cfg.info.available) return { value: null, text: '' };
  const v = cfg.options.get(option);
  if (v === undefined || v === 'n') return { value: 'n', text: `${option} is not set` };
  if (v === 'y' || v === 'm') return { value: v, text: `${option}=${v}` };
  return { value: 'other', text: `${option}=${v}` };
}

async function runTool(path: string, args: string[], timeoutMs: number): Promise<{ out: string; ok: boolean; error: string }> {
  try {
    const r = await runCommand(path, args, { timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    const error = r.timedOut
      ? `timed out after ${timeoutMs} ms`
      : r.exitCode !== 0
        ? r.startError ?? `exit code ${r.exitCode}: ${(r.stderr || '').trim().split('\n').pop() ?? ''}`
        : '';
    return { out: `${r.stdout}\n${r.stderr}`, ok: !r.timedOut && r.exitCode === 0, error };
  } catch (e) {
    return { out: '', ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

interface BpftoolResult {
  path: string | null;
  probe: BpftoolProbe | null;
  libbpf: [number, number] | null;
  why: string;
}

async function runBpftool(isRoot: boolean): Promise<BpftoolResult> {
  const path = await findBinary('bpftool');
  if (!path) return { path: null, probe: null, libbpf: null, why: 'bpftool missing (apt-get install bpftool)' };
  if (!isRoot) return { path, probe: null, libbpf: null, why: 'bpftool probes need root' };
  const [probeRun, versionRun] = await Promise.all([
    runTool(path, ['feature', 'probe', 'kernel', '-j'], 20_000),
    runTool(path, ['version', '-j'], 5_000),
  ]);
  let libbpf: [number, number] | null = null;
  try {
    const v = JSON.parse(versionRun.out.trim().split('\n')[0] ?? '') as { libbpf_version?: string };
    const m = /^(\d+)\.(\d+)/.exec(v.libbpf_version ?? '');
    if (m) libbpf = [Number(m[1]), Number(m[2])];
  } catch {
    libbpf = null;
  }
  if (!probeRun.ok) return { path, probe: null, libbpf, why: `bpftool feature probe failed: ${probeRun.error}` };
  try {
    const json = probeRun.out.slice(probeRun.out.indexOf('{'));
    const end = json.lastIndexOf('}');
    return { path, probe: parseBpftoolProbe(json.slice(0, end + 1)), libbpf, why: '' };
  } catch (e) {
    return { path, probe: null, libbpf, why: `bpftool feature probe printed no JSON (${String(e)})` };
  }
}

interface BpftraceResult {
  path: string | null;
  info: Record<string, Record<string, string>> | null;
  why: string;
}

async function runBpftraceInfo(isRoot: boolean): Promise<BpftraceResult> {
  const path = await findBinary('bpftrace');
  if (!path) return { path: null, info: null, why: 'bpftrace missing' };
  if (!isRoot) return { path, info: null, why: 'bpftrace --info loads test programs, which needs root' };
  const r = await runTool(path, ['--info'], 20_000);
  const info = parseBpftraceInfo(r.out);
  if (!info['Probe types']) return { path, info: null, why: `bpftrace --info printed no "Probe types" (${r.error || 'unexpected output'})` };
  return { path, info, why: '' };
}

// ---------------------------------------------------------------- detection

let reportPromise: Promise<FeatureReport> | undefined;

/** Detects every kernel feature once per process (pass `refresh` to detect again). */
export function detectFeatures(opts: { refresh?: boolean } = {}): Promise<FeatureReport> {
  if (opts.refresh || !reportPromise) {
    if (opts.refresh) configPromise = undefined;
    reportPromise = detectAll();
    reportPromise.catch(() => {
      reportPromise = undefined;
    });
  }
  return reportPromise;
}

/** One feature's status (from the cached report). */
export async function featureStatus(feature: KernelFeature): Promise<FeatureStatus> {
  const r = await detectFeatures();
  const { present, how } = r[feature];
  return { present, how };
}

async function detectAll(): Promise<FeatureReport> {
  const rel = release();
  const version = parseKernelRelease(rel);
  const isRoot = process.geteuid?.() === 0;
  const [cfg, tfs, bpftool, bpftrace, btfStat] = await Promise.all([
    kernelConfig(),
    ensureTracefs(),
    runBpftool(isRoot),
    runBpftraceInfo(isRoot),
    stat(BTF_VMLINUX).catch(() => null),
  ]);
  const categories = tfs.path ? await tracepointCategories() : [];
  const pmus = {
    kprobe: existsSync(`${PMU_DIR}/kprobe`),
    uprobe: existsSync(`${PMU_DIR}/uprobe`),
    tracepoint: existsSync(`${PMU_DIR}/tracepoint`),
  };

  const btf = detectBtf(btfStat, cfg);
  const native = isRoot ? await nativeVerdicts() : undefined;
  const report: FeatureReport = {
    kernel: rel,
    config: cfg.info,
    tools: { bpftool: bpftool.probe ? bpftool.path : null, bpftrace: bpftrace.info ? bpftrace.path : null },
    btf,
    tracefs: {
      present: tfs.path ? true : tfs.kernelSupports === false ? false : null,
      how: tfs.how,
      path: tfs.path,
      mountedByUs: tfs.mountedByUs,
    },
    tracepoints: { ...detectTracepoints(tfs, categories, pmus.tracepoint, cfg), categories },
    kprobes: detectKprobes(tfs, pmus.kprobe, cfg, version, bpftrace),
    fentry: detectFentry(btf, isRoot, bpftrace, bpftool),
    uprobes: detectUprobes(tfs, pmus.uprobe, cfg),
    ringbuf: detectRingbuf(bpftool, rel, version),
  };
  // A real load-and-attach by our own addon decides kprobes and fentry; the files and tools
  // above stay as supporting evidence (and as the answer when the addon is not built).
  for (const feature of ['kprobes', 'fentry'] as const) {
    const verdict = native?.[feature];
    if (verdict && verdict.present !== null) {
      report[feature] = { present: verdict.present, how: `${verdict.how}; ${report[feature].how}` };
    }
  }
  return report;
}

/** The addon's report (engine/native/features.ts) as FeatureStatus, for the features it decides. */
export function featureStatuses(r: NativeFeatureReport): Record<'btf' | 'kprobes' | 'fentry' | 'ringbuf', FeatureStatus> {
  const ringbuf = r.mapTypes.ringbuf.supported;
  return {
    btf: { present: r.btf.present, how: r.btf.present ? 'libbpf loaded the vmlinux BTF' : `libbpf found no vmlinux BTF (${r.btf.errno ?? 'unknown'})` },
    kprobes: { present: r.kprobe.attaches, how: `native probe: ${r.kprobe.how}` },
    fentry: { present: r.fentry.attaches, how: `native probe: ${r.fentry.how}` },
    ringbuf: {
      present: ringbuf,
      how: ringbuf === null ? `libbpf could not probe the ringbuf map type (${r.mapTypes.ringbuf.errno})` : `libbpf probe: ringbuf map type ${ringbuf ? 'loads' : 'refused'}`,
    },
  };
}

/** The addon's own probes, or undefined when it is not built or fails to load. */
async function nativeVerdicts(): Promise<Partial<Record<'kprobes' | 'fentry', FeatureStatus>> | undefined> {
  try {
    const { nativeFeatures } = await import('../native/features.js');
    return featureStatuses(nativeFeatures());
  } catch {
    return undefined;
  }
}

function detectBtf(st: Awaited<ReturnType<typeof stat>> | null, cfg: KernelConfig): FeatureStatus {
  const c = configSays(cfg, 'CONFIG_DEBUG_INFO_BTF');
  if (st && st.isFile()) {
    return { present: true, how: `${BTF_VMLINUX} exists (${Math.round(Number(st.size) / 1024)} KiB)${c.text ? `; ${c.text}` : ''}` };
  }
  if (!existsSync('/sys/kernel')) return { present: null, how: '/sys/kernel is not there (sysfs not mounted?)' };
  return { present: false, how: `${BTF_VMLINUX} missing${c.text ? `; ${c.text}` : ''}` };
}

function detectTracepoints(tfs: TracefsStatus, categories: string[], pmu: boolean, cfg: KernelConfig): FeatureStatus {
  const c = configSays(cfg, 'CONFIG_TRACEPOINTS');
  const cfgText = c.text ? `; ${c.text}` : '';
  if (tfs.path && categories.length > 0) {
    return { present: true, how: `${categories.length} event categories under ${tfs.path}/events${cfgText}` };
  }
  if (c.value === 'n') return { present: false, how: `no tracepoint events${cfgText}` };
  if (tfs.path) return { present: false, how: `${tfs.path}/events lists no event categories${cfgText}` };
  if (pmu) {
    return {
      present: true,
      how: `tracepoint PMU in ${PMU_DIR}${cfgText}; events not listed: ${tfs.how}`,
    };
  }
  return { present: null, how: `unknown: ${tfs.how}, and no tracepoint PMU in ${PMU_DIR}${cfgText}` };
}

function detectKprobes(
  tfs: TracefsStatus,
  pmu: boolean,
  cfg: KernelConfig,
  version: [number, number, number] | null,
  bpftrace: BpftraceResult,
): FeatureStatus {
  const c = configSays(cfg, 'CONFIG_KPROBES');
  const events = tfs.path ? existsSync(`${tfs.path}/kprobe_events`) : null;
  const parts: string[] = [];
  parts.push(pmu ? `kprobe PMU in ${PMU_DIR}` : `no kprobe PMU in ${PMU_DIR}`);
  if (events !== null) parts.push(events ? `kprobe_events in ${tfs.path}` : `no kprobe_events in ${tfs.path}`);
  const bpftraceKprobe = bpftrace.info?.['Probe types']?.['kprobe'];

  let present: boolean | null;
  if (pmu || events === true || c.value === 'y') present = true;
  else if (events === false || c.value === 'n') present = false;
  else if (atLeast(version, 4, 17) === true) {
    present = false;
    parts.push('kernels since 4.17 with kprobes register a kprobe PMU');
  } else present = null;

  let how = parts.join(' and ') + (c.text ? `; ${c.text}` : '');
  if (present === false && bpftraceKprobe === 'yes') {
    how += " (bpftrace --info's 'kprobe: yes' only means the kprobe program type loads)";
  }
  if (present === null) how = `unknown: ${how}; ${tfs.how}`;
  return { present, how };
}

function detectUprobes(tfs: TracefsStatus, pmu: boolean, cfg: KernelConfig): FeatureStatus {
  const c = configSays(cfg, 'CONFIG_UPROBES');
  const events = tfs.path ? existsSync(`${tfs.path}/uprobe_events`) : null;
  const parts: string[] = [pmu ? `uprobe PMU in ${PMU_DIR}` : `no uprobe PMU in ${PMU_DIR}`];
  if (events !== null) parts.push(events ? `uprobe_events in ${tfs.path}` : `no uprobe_events in ${tfs.path}`);
  let how = parts.join(' and ');
  if (c.text) how += `; ${c.text}`;
  if (pmu || events === true || c.value === 'y') return { present: true, how };
  if (events === false || c.value === 'n') return { present: false, how };
  return { present: null, how: `unknown: ${how}; ${tfs.how}` };
}

function detectFentry(btf: FeatureStatus, isRoot: boolean, bpftrace: BpftraceResult, bpftool: BpftoolResult): FeatureStatus {
  if (btf.present === false) return { present: false, how: `fentry needs kernel BTF: ${btf.how}` };
  const kfunc = bpftrace.info?.['Probe types']?.['kfunc'];
  if (kfunc === 'yes' || kfunc === 'no') {
    return {
      present: kfunc === 'yes',
      how: `bpftrace --info says "kfunc: ${kfunc}", from loading and attaching an fentry program on sched_fork`,
    };
  }
  if (!isRoot) return { present: null, how: 'unknown: loading a test fentry program needs root' };
  // libbpf >= 0.7 probes BPF_PROG_TYPE_TRACING by loading an fentry program and reading the
  // verifier's answer: a yes is reliable, a no may only mean the log wording changed.
  const tracing = bpftool.probe?.programTypes['tracing'];
  const modernLibbpf = bpftool.libbpf !== null && (bpftool.libbpf[0] > 0 || bpftool.libbpf[1] >= 7);
  if (tracing === true && modernLibbpf) {
    return { present: true, how: 'bpftool feature probe: have_tracing_prog_type (libbpf loaded an fentry program)' };
  }
  const bpftoolNote = tracing === false ? "; bpftool's have_tracing_prog_type is false, which alone is not conclusive" : '';
  return { present: null, how: `unknown: needs bpftrace or the native addon (${bpftrace.why})${bpftoolNote}` };
}

function detectRingbuf(bpftool: BpftoolResult, rel: string, version: [number, number, number] | null): FeatureStatus {
  const ringbuf = bpftool.probe?.mapTypes['ringbuf'];
  if (ringbuf !== undefined) {
    return { present: ringbuf, how: `bpftool feature probe kernel: have_ringbuf_map_type ${ringbuf}` };
  }
  const newEnough = atLeast(version, 5, 8);
  const why = bpftool.why || 'bpftool did not report the ringbuf map type';
  if (newEnough === null) return { present: null, how: `unknown: ${why}, and kernel release ${rel} is not a version` };
  return {
    present: newEnough,
    how: `not probed (${why}); kernel ${rel} is ${newEnough ? '≥' : '<'} 5.8, where the BPF ring buffer arrived`,
  };
}
