// What `ebpfnet selftest` found on this host, where it keeps its last result, and how doctor
// describes it. Here beside doctor, apart from the selftest itself (engine/selftest, which runs
// a probe): doctor loads nothing heavy and the host layer imports nothing above it.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { dirname, join } from 'node:path';

export const SELFTEST_VERSION = 1;

/** How drops.kernel attached one of its programs (its `attach` data), as the result keeps it. */
export interface SelftestAttach {
  program: string;
  /** raw_tracepoint, tp_btf, fentry, kprobe, ... */
  method: string;
  target: string;
  attachMs: number;
  /** In-process load time of the object, ms. */
  loadMs?: number;
  /** The BTF CO-RE reads were relocated against. */
  btf?: string;
}

export interface SelftestCheck {
  id: string;
  /** What was injected, in words. */
  label: string;
  reason: string;
  /** Where the kernel frees these packets (function). */
  location: string;
  expected: number;
  counted: number;
  /** Allowed |counted - expected|. */
  tolerance: number;
  verdict: 'ok' | 'mismatch';
}

export interface SelftestResult {
  version: number;
  /** `ok`: every count agreed; `mismatch`: some did not; `error`: the selftest could not finish. */
  status: 'ok' | 'mismatch' | 'error';
  at: string;
  kernel: string;
  durationMs: number;
  checks: SelftestCheck[];
  /** Drops in the namespace that neither case explains (not an error by themselves). */
  other: Record<string, number>;
  method: string | null;
  attach: SelftestAttach[];
  fallback?: string;
  error?: string;
}

export function stateDir(): string {
  return process.env.EBPFNET_STATE_DIR || '/var/lib/ebpfnet';
}

export function statePath(): string {
  return join(stateDir(), 'selftest.json');
}

export async function saveSelftest(result: SelftestResult): Promise<string> {
  const path = statePath();
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(result, null, 2)}\n`);
  await rename(tmp, path);
  return path;
}

/** The last stored result, or null when there is none (or it is unreadable). */
export async function loadSelftest(): Promise<SelftestResult | null> {
  try {
    const v = JSON.parse(await readFile(statePath(), 'utf8')) as SelftestResult;
    return v && typeof v === 'object' && typeof v.status === 'string' && typeof v.at === 'string' ? v : null;
  } catch {
    return null;
  }
}

/** One line for doctor: the last result and its age; a result of another kernel says nothing of this one. */
export function describeLast(r: SelftestResult | null, now = Date.now(), kernel = release()): { status: 'ok' | 'warn'; detail: string } {
  if (r === null) return { status: 'warn', detail: `never run (or no ${statePath()}): run ebpfnet selftest` };
  if (r.kernel !== kernel) return { status: 'warn', detail: `last run on kernel ${r.kernel}, not this one (${kernel}): run ebpfnet selftest` };
  const ageS = Math.max(0, Math.round((now - Date.parse(r.at)) / 1000));
  const age = ageS < 120 ? `${ageS}s` : ageS < 7200 ? `${Math.round(ageS / 60)}m` : ageS < 172800 ? `${Math.round(ageS / 3600)}h` : `${Math.round(ageS / 86400)}d`;
  const counts = r.checks.map((c) => `${c.reason} ${c.counted}/${c.expected}`).join(', ');
  const detail = `${r.status} ${age} ago on ${r.kernel}${counts ? `: ${counts}` : ''}${r.method ? ` (${r.method})` : ''}${r.error ? `: ${r.error}` : ''}`;
  return { status: r.status === 'ok' ? 'ok' : 'warn', detail };
}
