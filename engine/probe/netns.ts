// Running a probe's commands and reads inside a network namespace: /proc/net and /proc/sys/net
// show the namespace of the process that reads them, so a namespace's files are read by a
// process inside it.
import { fileReadings } from './file-readings.js';
import type { Params, ProbeIO, RawRecord } from './types.js';

const READ_TIMEOUT_MS = 15_000;

/** argv run inside `netns`: an `ip netns` name, or a path such as /proc/<pid>/ns/net. */
export function inNetns(netns: string | undefined, argv: string[]): string[] {
  if (netns === undefined) return argv;
  if (netns.startsWith('/')) return ['nsenter', `--net=${netns}`, '--', ...argv];
  return ['ip', 'netns', 'exec', netns, ...argv];
}

/** The probe's `netns` param: undefined for the namespace ebpfnet runs in; throws on a malformed one. */
export function netnsOf(params: Params): string | undefined {
  const ns = params.netns;
  if (typeof ns !== 'string' || ns === '') return undefined;
  if (!ns.startsWith('/') && (ns.includes('/') || /\s/.test(ns) || ns === '.' || ns === '..')) {
    throw new Error(`netns "${ns}" is neither an ip netns name nor a path`);
  }
  return ns;
}

/**
 * Reads small procfs files as one observation. Inside a namespace they are read by a process
 * in it (`grep -H '' FILES` prints each line after its file's name).
 */
export function readFilesIn(io: ProbeIO, name: string, netns: string | undefined, paths: string[]): Promise<RawRecord> {
  if (netns === undefined) return io.readFiles(name, paths);
  return io.exec(name, inNetns(netns, ['grep', '-H', '-e', '', '--', ...paths]), { timeoutMs: READ_TIMEOUT_MS, allowFailure: true });
}

/** The files of a readFilesIn record: path → text, or the error that kept it from being read. */
export function readingsOf(rec: RawRecord | undefined, paths: string[]): Map<string, { text?: string; error?: string }> {
  const out = new Map<string, { text?: string; error?: string }>();
  if (!rec) return out;
  if (rec.op === 'readfiles') {
    for (const f of fileReadings(rec)) out.set(f.path, f.text !== undefined ? { text: f.text } : { error: f.error ?? 'unreadable' });
    return out;
  }
  // Longest first: /proc/net/snmp6 is not /proc/net/snmp.
  const ordered = [...paths].sort((a, b) => b.length - a.length);
  const texts = new Map<string, string[]>();
  for (const line of rec.stdout.split('\n')) {
    const path = ordered.find((p) => line.startsWith(`${p}:`));
    if (path === undefined) continue;
    texts.set(path, [...(texts.get(path) ?? []), line.slice(path.length + 1)]);
  }
  const errors = new Map<string, string>();
  for (const line of rec.stderr.split('\n')) {
    const m = /^grep: (.*): ([^:]+)$/.exec(line.trim());
    if (m) errors.set(m[1]!, m[2]!);
  }
  for (const p of paths) {
    const lines = texts.get(p);
    if (lines) out.set(p, { text: `${lines.join('\n')}\n` });
    else if (errors.has(p)) out.set(p, { error: errors.get(p)! });
    else if (rec.exitCode === 0 || rec.exitCode === 1) out.set(p, { text: '' });
    else out.set(p, { error: rec.error ?? `not read (exit code ${rec.exitCode})` });
  }
  return out;
}

/** "no network namespace NS: why" when `rec` failed because the namespace cannot be entered; else null. */
export function netnsMissing(rec: RawRecord, netns: string | undefined): string | null {
  if (netns === undefined || rec.op !== 'exec') return null;
  const why = (rec.stderr.split('\n').find((l) => l.trim() !== '') ?? rec.error ?? '').trim();
  return /^Cannot open network namespace|^nsenter: cannot open/.test(why) ? `no network namespace ${netns}: ${why}` : null;
}
