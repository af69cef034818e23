// Shared by the native runtime tests: the selftest object's event layout, and what
// `bpftool prog show` says is loaded.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { packageRoot } from '../../engine/package-info.js';

/** Programs of engine/selftest/selftest.bpf.c, by the names the kernel shows. */
export const SELFTEST_PROGRAMS = ['st_tracepoint', 'st_tp_btf', 'st_raw_tp', 'st_uprobe', 'st_uretprobe', 'st_kprobe', 'st_fentry'];

/** enum selftest_source (engine/selftest/selftest.h). */
export const SOURCE = { tracepoint: 1, tpBtf: 2, rawTp: 3, uprobe: 4, uretprobe: 5, kprobe: 6, fentry: 7 } as const;

export const EVENT_SIZE = 48;

export interface SelftestEvent {
  tsNs: bigint;
  tgid: number;
  tid: number;
  seq: number;
  kstackId: number;
  source: number;
  comm: string;
}

/** struct selftest_event (engine/selftest/selftest.h). */
export function decodeEvent(b: Buffer): SelftestEvent {
  if (b.length !== EVENT_SIZE) throw new Error(`event of ${b.length} bytes, expected ${EVENT_SIZE}`);
  const comm = b.subarray(32, 48);
  const nul = comm.indexOf(0);
  return {
    tsNs: b.readBigUInt64LE(0),
    tgid: b.readUInt32LE(8),
    tid: b.readUInt32LE(12),
    seq: b.readUInt32LE(16),
    kstackId: b.readInt32LE(20),
    source: b.readUInt32LE(24),
    comm: comm.subarray(0, nul < 0 ? 16 : nul).toString('latin1'),
  };
}

export interface LoadedProgram {
  id: number;
  name: string;
  type: string;
  pids: number[];
}

/** Programs the kernel holds, from `bpftool prog show -j`. */
export function loadedPrograms(): LoadedProgram[] {
  const r = spawnSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bpftool prog show failed: ${r.stderr}`);
  const list = JSON.parse(r.stdout) as Array<{ id: number; name?: string; type: string; pids?: Array<{ pid: number }> }>;
  return list.map((p) => ({ id: p.id, name: p.name ?? '', type: p.type, pids: (p.pids ?? []).map((x) => x.pid) }));
}

/**
 * Programs of the selftest object that belong to `pid` or to no process at all (left
 * attached after their owner died). Programs of other live processes are not ours to judge.
 */
export function selftestProgramsOf(pid: number): LoadedProgram[] {
  return loadedPrograms().filter(
    (p) => SELFTEST_PROGRAMS.includes(p.name) && (p.pids.length === 0 || p.pids.includes(pid)),
  );
}

/** Waits until `check` returns true (the kernel frees programs after an RCU grace period). */
export async function eventually(check: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The C library this process runs on (for uprobes on its functions). */
export function libcPath(): string {
  const maps = readFileSync('/proc/self/maps', 'utf8');
  const m = /\s(\/\S*\/libc(?:\.so\.6|-[\d.]+\.so))$/m.exec(maps);
  if (!m) throw new Error('libc not found in /proc/self/maps');
  return m[1]!;
}

/** The compiled test fixture objects (test/native/fixtures/*.bpf.c). */
export function fixtureObject(name: string): string {
  return join(packageRoot(), 'build', 'bpf', 'fixtures', `${name}.bpf.o`);
}

/** The name the kernel gives this process's main thread (the `comm` of its events). */
export function ownComm(): string {
  return readFileSync('/proc/self/comm', 'utf8').trim();
}

/** Runs `use` on the selftest object loaded with its filters on this thread and its tracepoint attached, then closes it. */
export function withThreadTraced(use: (obj: BpfObject) => void): void {
  const obj = BpfObject.open(bpfObjectPath('selftest'), { globals: { targ_tgid: process.pid, targ_tid: process.pid } });
  try {
    obj.load();
    obj.program('st_tracepoint').attach();
    use(obj);
  } finally {
    obj.close();
  }
}
