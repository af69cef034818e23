// Turning on the kernel's BPF run-time statistics (run_cnt, run_time_ns per program) for as
// long as a probe runs, and reading them back from /proc/<pid>/fdinfo.
import { closeSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { addon } from './addon.js';

const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

export interface StatsSession {
  /** How the statistics were turned on. */
  how: 'BPF_ENABLE_STATS' | 'sysctl already on' | 'sysctl (restored after)' | 'unavailable';
  /** Why they could not be turned on (how = unavailable). */
  why?: string;
  close(): Promise<void>;
}

/**
 * Turns the statistics on. BPF_ENABLE_STATS is preferred: the kernel turns them off again when
 * its fd closes, even if ebpfnet is killed. The sysctl is the fallback, put back on close().
 */
export async function enableRunStats(): Promise<StatsSession> {
  let firstWhy: string;
  try {
    const fd = addon().enableStats();
    return { how: 'BPF_ENABLE_STATS', close: async () => closeSync(fd) };
  } catch (err) {
    firstWhy = err instanceof Error ? err.message : String(err);
  }
  try {
    const before = (await readFile(SYSCTL, 'utf8')).trim();
    if (before === '1') return { how: 'sysctl already on', close: async () => {} };
    await writeFile(SYSCTL, '1');
    return { how: 'sysctl (restored after)', close: async () => writeFile(SYSCTL, before).catch(() => {}) };
  } catch (err) {
    const why = `${firstWhy}; ${SYSCTL}: ${err instanceof Error ? err.message : String(err)}`;
    return { how: 'unavailable', why, close: async () => {} };
  }
}

export interface ProgramRunStats {
  fd: number;
  progId: number;
  /** The kernel's program type number (5 tracepoint, 17 raw_tracepoint, 26 tracing...). */
  progType: number;
  runCnt: number;
  runTimeNs: number;
}

/** Parses one /proc/<pid>/fdinfo/<fd> text; null when the fd is not a BPF program. */
export function parseProgramFdinfo(fd: number, text: string): ProgramRunStats | null {
  const field = (name: string): number | null => {
    const m = new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  const progId = field('prog_id');
  const progType = field('prog_type');
  if (progId === null || progType === null) return null;
  return { fd, progId, progType, runCnt: field('run_cnt') ?? 0, runTimeNs: field('run_time_ns') ?? 0 };
}

/**
 * The run statistics of the BPF programs a process holds open: `fds` when given (our own
 * programs), otherwise every program fd of `pid` (a bpftrace child). One program held by
 * several fds is counted once.
 */
export async function programRunStats(pid: number | 'self', fds?: number[]): Promise<ProgramRunStats[]> {
  const dir = `/proc/${pid}/fdinfo`;
  const list = fds ?? (await readdir(dir).catch(() => [] as string[])).map(Number).filter(Number.isInteger);
  const byId = new Map<number, ProgramRunStats>();
  await Promise.all(
    list.map(async (fd) => {
      const text = await readFile(`${dir}/${fd}`, 'utf8').catch(() => '');
      const stats = parseProgramFdinfo(fd, text);
      if (stats && !byId.has(stats.progId)) byId.set(stats.progId, stats);
    }),
  );
  return [...byId.values()].sort((a, b) => a.progId - b.progId);
}
