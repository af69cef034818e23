// The kprobe variant of runBpfSession (engine/probe/bpf-session.ts): objects whose programs
// attach one by one, as far as the kernel lets them: kprobes beside tracepoints (ovs.drops'
// kernel datapath, net.conntrack's nf_conntrack_in, net.defrag's ip_defrag/ip_expire, other.tc's
// tcf_classify/tcf_action_exec). Each program that attaches counts; the others are recorded with
// why (`<prefix>attach`), and the maps are read after the window (`<prefix>dump`) when any
// attached. On a kernel without kprobes no kprobe program is loaded: the session holds nothing
// open and the finding says why.
import { existsSync } from 'node:fs';
import { errorLine } from '../../engine/native/attach-plan.js';
import { ensureMinimalBtf } from '../../engine/native/btf-cache.js';
import type { GlobalValue } from '../../engine/native/globals.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { runBpfSession, type BpfSessionOptions, type SessionWork } from '../../engine/probe/bpf-session.js';
import { overheadOf, type OverheadReport } from '../../engine/probe/overhead.js';
import type { ProbeIO, RawRecord } from '../../engine/probe/types.js';
import { namespaceNames } from './netdev.js';

/** What loading an object and attaching each of its kprobe/tracing programs gave (capture `<prefix>attach`). */
export interface AttachCapture {
  loadMs: number;
  attached: Array<{ program: string; kind: string; target: string }>;
  failed: Array<{ program: string; kind: string; target: string; error: string }>;
  /** Set when the object could not be loaded at all. */
  error?: string;
}

const KPROBE_PMU = '/sys/bus/event_source/devices/kprobe';
const NO_KPROBES = `this kernel has no kprobes (no ${KPROBE_PMU}): not loaded`;

/** Kernels since 4.17 register the kprobe PMU exactly when they have kprobes. */
function kprobesPresent(): boolean {
  return existsSync(KPROBE_PMU);
}

/** A program of an object and where it attaches: `kprobe`/`kretprobe` by function name, else its BTF section target. */
export interface ProgramTarget {
  program: string;
  kind: string;
  target: string;
}

/**
 * Loads the object `open` gives and attaches each program it can: a kernel without kprobes
 * fails those (reported in `failed`), and what did attach still counts. No object is returned
 * when nothing attached (it is closed).
 */
export function loadAndAttach(open: () => BpfObject, programs: readonly ProgramTarget[]): { obj?: BpfObject; record: AttachCapture } {
  const record: AttachCapture = { loadMs: 0, attached: [], failed: [] };
  // Without kprobes a kprobe program verifies but can never attach: loading it only costs time.
  const unattachable = kprobesPresent() ? [] : programs.filter((p) => p.kind === 'kprobe' || p.kind === 'kretprobe');
  for (const p of unattachable) record.failed.push({ program: p.program, kind: p.kind, target: p.target, error: NO_KPROBES });
  programs = programs.filter((p) => !unattachable.includes(p));
  if (programs.length === 0) return { record };
  let obj: BpfObject | undefined;
  try {
    obj = open();
    obj.load();
    record.loadMs = Math.round((obj.loadMs ?? 0) * 1000) / 1000;
  } catch (err) {
    obj?.close();
    record.error = errorLine(err);
    return { record };
  }
  for (const p of programs) {
    try {
      const prog = obj.program(p.program);
      if (p.kind === 'kprobe') prog.attachKprobe(p.target);
      else if (p.kind === 'kretprobe') prog.attachKretprobe(p.target);
      else prog.attachTrace();
      record.attached.push({ program: p.program, kind: p.kind, target: p.target });
    } catch (err) {
      record.failed.push({ program: p.program, kind: p.kind, target: p.target, error: errorLine(err) });
    }
  }
  if (record.attached.length === 0) {
    obj.close();
    return { record };
  }
  return { obj, record };
}

/**
 * runBpfSession's load for `programs` of `open`'s object (loadAndAttach), and whether any
 * attached: the maps are read only then.
 */
export function kprobeLoad(open: () => BpfObject, programs: readonly ProgramTarget[]): Pick<BpfSessionOptions, 'load' | 'attached'> {
  return {
    load: async () => loadAndAttach(open, programs),
    attached: (record) => (record as AttachCapture).attached.length > 0,
  };
}

/** The attach record's programs as `kind target`, and the failures as `kind target: why` (a failed load first). */
export function attachLists(att: AttachCapture): { attached: string[]; failed: string[] } {
  return {
    attached: att.attached.map((a) => `${a.kind} ${a.target}`),
    failed: [...(att.error ? [`load: ${att.error}`] : []), ...att.failed.map((f) => `${f.kind} ${f.target}: ${f.error}`)],
  };
}

/** The records' prefix of a probe's kprobe session beside its main one (`kprobe-attach`...). */
export const KPROBE_PREFIX = 'kprobe-';

/**
 * Loads `programs` of `open`'s object and attaches each that attaches while `window` runs, then
 * records what `read` reads of the maps with the window and the namespaces' names a replay labels
 * devices with (`kprobe-attach|dump|overhead`).
 */
export async function runDeviceKprobeSession<D extends object>(io: ProbeIO, open: () => BpfObject, programs: readonly ProgramTarget[], window: SessionWork, read: (o: BpfObject) => D): Promise<void> {
  await runBpfSession(io, {
    prefix: KPROBE_PREFIX,
    ...kprobeLoad(open, programs),
    window,
    read: async (o, w) => ({ ...read(o), windowMs: Math.round(w.ms), ...(await namespaceNames()) }),
  });
}

export interface KprobeProgram extends ProgramTarget {
  kind: 'kprobe';
}

/**
 * The opener of `<name>.bpf.o` with its globals, its CO-RE reads relocated against the cached
 * minimal BTF when one can be made (tens of ms less than parsing vmlinux's).
 */
export async function kprobeObjectOpener(name: string, globals: Record<string, GlobalValue>): Promise<() => BpfObject> {
  const path = bpfObjectPath(name);
  const btfPath = await ensureMinimalBtf(path).catch(() => undefined);
  return () => BpfObject.open(path, { globals, ...(btfPath ? { btfPath } : {}) });
}

export interface KprobeRecords<D> {
  /** `kprobe ip_defrag`... */
  attached: string[];
  /** Programs that did not attach, with why (`kprobe ip_expire: ...`). */
  failed: string[];
  /** The maps after the window; null when nothing attached. */
  dump: D | null;
  overhead?: OverheadReport;
}

/** A recorded kprobe session; null when none ran (older evidence, or not asked for). */
export function readKprobeSession<D>(records: RawRecord[], prefix: string): KprobeRecords<D> | null {
  const find = (name: string) => records.find((r) => r.op === 'capture' && r.name === `${prefix}${name}` && r.error === undefined);
  const attachRec = find('attach');
  if (!attachRec) return null;
  const dumpRec = find('dump');
  const overhead = overheadOf(records, prefix) ?? undefined;
  return {
    ...attachLists(JSON.parse(attachRec.stdout) as AttachCapture),
    dump: dumpRec ? (JSON.parse(dumpRec.stdout) as D) : null,
    ...(overhead ? { overhead } : {}),
  };
}

/** The Kprobes table of a finding: each program, attached or why not. */
export function kprobeTable(k: Pick<KprobeRecords<unknown>, 'attached' | 'failed'>): { title: string; columns: string[]; rows: string[][] } {
  return {
    title: 'Kprobes',
    columns: ['program', 'attached'],
    rows: [...k.attached.map((a) => [a, 'yes']), ...k.failed.map((f) => [f.split(':')[0]!, `no: ${f.slice(f.indexOf(':') + 1).trim()}`])],
  };
}
