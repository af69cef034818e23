// Where tracefs lives (mounting it when the machine did not), and which tracepoints it lists.
import { existsSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { runCommand } from '../exec.js';
import { findBinary } from './binaries.js';

export const DEFAULT_TRACEFS = '/sys/kernel/tracing';

export interface MountEntry {
  source: string;
  target: string;
  fstype: string;
  options: string[];
}

export interface TracefsStatus {
  /** Directory holding `events/`, or null when tracefs cannot be used. */
  path: string | null;
  /** True when this process mounted it. */
  mountedByUs: boolean;
  /** The evidence, or why it is unusable. */
  how: string;
  /** Whether the kernel knows the tracefs filesystem (/proc/filesystems), null when unreadable. */
  kernelSupports: boolean | null;
}

/** Undoes the octal escapes of /proc/mounts (`\040` is a space). */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses /proc/mounts (or /proc/self/mounts) text. */
export function parseMounts(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    entries.push({
      source: unescapeMountField(f[0]!),
      target: unescapeMountField(f[1]!),
      fstype: f[2]!,
      options: f[3]!.split(','),
    });
  }
  return entries;
}

async function readMounts(): Promise<MountEntry[]> {
  try {
    return parseMounts(await readFile('/proc/mounts', 'utf8'));
  } catch {
    return [];
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The tracefs directory as currently mounted, without mounting anything: a tracefs mount
 * (preferring /sys/kernel/tracing, then /sys/kernel/debug/tracing), else the `tracing`
 * directory of a mounted debugfs (which the kernel automounts on access).
 */
export async function findTracefs(): Promise<string | null> {
  const mounts = await readMounts();
  const tracefs = mounts.filter((m) => m.fstype === 'tracefs').map((m) => m.target);
  const preferred = [DEFAULT_TRACEFS, '/sys/kernel/debug/tracing'];
  for (const p of preferred) if (tracefs.includes(p) && (await isDir(`${p}/events`))) return p;
  for (const p of tracefs) if (await isDir(`${p}/events`)) return p;
  for (const m of mounts.filter((e) => e.fstype === 'debugfs')) {
    const p = `${m.target}/tracing`;
    if (await isDir(`${p}/events`)) return p;
  }
  return null;
}

async function kernelHasTracefs(): Promise<boolean | null> {
  try {
    const text = await readFile('/proc/filesystems', 'utf8');
    return text.split('\n').some((l) => l.trim().split(/\s+/).pop() === 'tracefs');
  } catch {
    return null;
  }
}

let ensured: Promise<TracefsStatus> | undefined;

/**
 * Finds tracefs, mounting it at /sys/kernel/tracing when it is absent (as root, like
 * `mount -t tracefs nodev /sys/kernel/tracing`). The result is cached per process once
 * tracefs is usable; a failure is retried on the next call.
 */
export function ensureTracefs(): Promise<TracefsStatus> {
  if (!ensured) {
    ensured = locateOrMount();
    ensured.then(
      (s) => {
        if (s.path === null) ensured = undefined;
      },
      () => {
        ensured = undefined;
      },
    );
  }
  return ensured;
}

async function locateOrMount(): Promise<TracefsStatus> {
  const kernelSupports = await kernelHasTracefs();
  const found = await findTracefs();
  if (found) return { path: found, mountedByUs: false, how: `tracefs mounted at ${found}`, kernelSupports };
  const unreadable = (await readMounts()).find((m) => m.fstype === 'tracefs');
  if (unreadable) {
    return {
      path: null,
      mountedByUs: false,
      how: `tracefs is mounted at ${unreadable.target} but its events/ cannot be read (needs root)`,
      kernelSupports,
    };
  }
  if (kernelSupports === false) {
    return {
      path: null,
      mountedByUs: false,
      how: 'tracefs is not in /proc/filesystems (CONFIG_TRACING off?)',
      kernelSupports,
    };
  }
  if (process.geteuid?.() !== 0) {
    return {
      path: null,
      mountedByUs: false,
      how: `tracefs is not mounted and mounting it at ${DEFAULT_TRACEFS} needs root`,
      kernelSupports,
    };
  }
  const mount = await findBinary('mount');
  if (!mount) {
    return {
      path: null,
      mountedByUs: false,
      how: 'tracefs is not mounted and the mount binary is missing (apt-get install mount)',
      kernelSupports,
    };
  }
  if (!existsSync(DEFAULT_TRACEFS)) {
    return {
      path: null,
      mountedByUs: false,
      how: `tracefs is not mounted and ${DEFAULT_TRACEFS} does not exist (is sysfs mounted?)`,
      kernelSupports,
    };
  }
  const r = await runCommand(mount, ['-t', 'tracefs', 'nodev', DEFAULT_TRACEFS], { timeoutMs: 10_000 });
  const after = await findTracefs();
  if (after) {
    return { path: after, mountedByUs: true, how: `tracefs was not mounted; mounted it at ${after}`, kernelSupports };
  }
  const err = (r.stderr || r.stdout || `exit code ${r.exitCode}`).trim().split('\n')[0];
  return {
    path: null,
    mountedByUs: false,
    how: `tracefs is not mounted and \`mount -t tracefs nodev ${DEFAULT_TRACEFS}\` failed: ${err}`,
    kernelSupports,
  };
}

/** The tracefs directory (mounting it if needed), or null. */
export async function tracefsPath(): Promise<string | null> {
  return (await ensureTracefs()).path;
}

const TRACEPOINT_NAME = /^([A-Za-z0-9_][A-Za-z0-9_.-]*):([A-Za-z0-9_][A-Za-z0-9_.-]*)$/;

/** Splits `skb:kfree_skb` into category and event, or null when the name is malformed. */
export function parseTracepointName(name: string): { category: string; event: string } | null {
  const m = TRACEPOINT_NAME.exec(name);
  return m ? { category: m[1]!, event: m[2]! } : null;
}

/** Whether tracepoint `category:event` exists (tracefs `events/<category>/<event>`). */
export async function hasTracepoint(name: string): Promise<boolean> {
  const parsed = parseTracepointName(name);
  if (!parsed) return false;
  const root = await tracefsPath();
  if (!root) return false;
  return isDir(`${root}/events/${parsed.category}/${parsed.event}`);
}

/** The text of tracepoint `category:event`'s format file, or null when it does not exist. */
export async function tracepointFormat(name: string): Promise<string | null> {
  const parsed = parseTracepointName(name);
  if (!parsed) return null;
  const root = await tracefsPath();
  if (!root) return null;
  try {
    return await readFile(`${root}/events/${parsed.category}/${parsed.event}/format`, 'utf8');
  } catch {
    return null;
  }
}

/** Names of the folders in `dir`, sorted; empty when it cannot be read. */
async function subdirectories(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

/** The tracepoint categories (`skb`, `net`, `sched`...) tracefs lists, sorted; empty without tracefs. */
export async function tracepointCategories(): Promise<string[]> {
  const root = await tracefsPath();
  return root ? subdirectories(`${root}/events`) : [];
}

/** The events of one category (`net` → `net_dev_queue`, ...), sorted; empty when absent. */
export async function tracepointsIn(category: string): Promise<string[]> {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(category)) return [];
  const root = await tracefsPath();
  return root ? subdirectories(`${root}/events/${category}`) : [];
}
