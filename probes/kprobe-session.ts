// A session of kprobe programs that a probe runs beside its tracepoints (net.defrag's ip_defrag
// and ip_expire, other.tc's tcf_classify and tcf_action_exec): load the object, attach each
// program that attaches, record which did not and why (`<prefix>attach`), read the maps after
// the window (`<prefix>dump`). On a kernel without kprobes the programs load but none attaches:
// the session then holds nothing open and the finding says why.
import { ensureMinimalBtf } from '../engine/native/btf-cache.js';
import type { GlobalValue } from '../engine/native/globals.js';
import { BpfObject, bpfObjectPath } from '../engine/native/object.js';
import { BpfSession } from '../engine/probe/bpf-session.js';
import { overheadOf, type OverheadReport } from '../engine/probe/overhead.js';
import type { ProbeIO, RawRecord } from '../engine/probe/types.js';

export interface KprobeProgram {
  program: string;
  kind: 'kprobe';
  /** The kernel function. */
  target: string;
}

/** The `<prefix>attach` capture record. */
export interface KprobeAttach {
  loadMs: number;
  attached: Array<KprobeProgram & { attachMs: number }>;
  failed: Array<KprobeProgram & { error: string }>;
  /** Set when the object could not be loaded at all. */
  error?: string;
}

export interface KprobeSession {
  /** Reads the maps (when something attached) and closes the object. */
  finish(): Promise<void>;
  close(): void;
}

/**
 * Opens `<name>.bpf.o` with its globals, its CO-RE reads relocated against the cached minimal
 * BTF when there is one (tens of ms less than parsing vmlinux's, for programs that may not even
 * attach).
 */
export async function openKprobeObject(name: string, globals: Record<string, GlobalValue>): Promise<BpfObject> {
  const path = bpfObjectPath(name);
  const btfPath = await ensureMinimalBtf(path).catch(() => undefined);
  return BpfObject.open(path, { globals, ...(btfPath ? { btfPath } : {}) });
}

const oneLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
const us = (ms: number) => Math.round(ms * 1000) / 1000;

/** Loads `open()`'s object and attaches each of `programs` that attaches; `read` makes the dump, given the window's length. */
export async function startKprobeSession(
  io: ProbeIO,
  prefix: string,
  open: () => Promise<BpfObject>,
  programs: readonly KprobeProgram[],
  read: (obj: BpfObject, windowMs: number) => Promise<unknown>,
): Promise<KprobeSession> {
  const session = new BpfSession(io, prefix);
  const rec = await session.attach(async () => {
    const record: KprobeAttach = { loadMs: 0, attached: [], failed: [] };
    let obj: BpfObject | undefined;
    try {
      obj = await open();
      obj.load();
      record.loadMs = us(obj.loadMs ?? 0);
    } catch (err) {
      obj?.close();
      record.error = oneLine(err);
      return { record };
    }
    for (const p of programs) {
      try {
        record.attached.push({ ...p, attachMs: us(obj.program(p.program).attachKprobe(p.target).attachMs) });
      } catch (err) {
        record.failed.push({ ...p, error: oneLine(err) });
      }
    }
    if (record.attached.length > 0) return { obj, record };
    obj.close();
    return { record };
  });
  const attached = (JSON.parse(rec.stdout) as KprobeAttach).attached.length > 0;
  const attachedAt = performance.now();
  return {
    async finish() {
      if (!attached) return;
      await session.finish((o) => read(o, Math.round((session.detachedAt ?? performance.now()) - attachedAt)));
    },
    close() {
      void session.close();
    },
  };
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
  const att = JSON.parse(attachRec.stdout) as KprobeAttach;
  const dumpRec = find('dump');
  const overhead = overheadOf(records, prefix) ?? undefined;
  return {
    attached: att.attached.map((a) => `${a.kind} ${a.target}`),
    failed: [...(att.error ? [`load: ${att.error}`] : []), ...att.failed.map((f) => `${f.kind} ${f.target}: ${f.error}`)],
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
