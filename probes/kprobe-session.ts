// A session of kprobe programs that a probe runs beside its tracepoints (net.defrag's ip_defrag
// and ip_expire, other.tc's tcf_classify and tcf_action_exec), on ovs.drops/kernel.ts's
// attachSession: attach each program that attaches, record which did not and why
// (`<prefix>attach`), read the maps after the window (`<prefix>dump`). On a kernel without
// kprobes nothing is loaded: the session holds nothing open and the finding says why.
import { ensureMinimalBtf } from '../engine/native/btf-cache.js';
import type { GlobalValue } from '../engine/native/globals.js';
import { BpfObject, bpfObjectPath } from '../engine/native/object.js';
import { overheadOf, type OverheadReport } from '../engine/probe/overhead.js';
import type { ProbeIO, RawRecord } from '../engine/probe/types.js';
import { attachLists, attachSession, type AttachCapture, type ProgramTarget } from './ovs.drops/kernel.js';

export interface KprobeProgram extends ProgramTarget {
  kind: 'kprobe';
}

export interface KprobeSession {
  /** Reads the maps (when something attached) and closes the object. */
  finish(): Promise<void>;
  close(): void;
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

/**
 * Attaches what attaches of `programs` (ovs.drops/kernel.ts attachSession: nothing is loaded
 * where the kernel has no kprobes); `read` makes the dump, given the window's length.
 */
export async function startKprobeSession(
  io: ProbeIO,
  prefix: string,
  open: () => BpfObject,
  programs: readonly KprobeProgram[],
  read: (obj: BpfObject, windowMs: number) => Promise<unknown>,
): Promise<KprobeSession> {
  const { session, attached, attachedAt } = await attachSession(io, prefix, open, programs);
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
