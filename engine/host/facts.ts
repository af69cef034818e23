// Plain facts about the host a run happened on, kept in every run bundle.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { arch, availableParallelism, cpus, hostname, release, totalmem, uptime, version } from 'node:os';
import { dirname, join } from 'node:path';
import { packageVersion } from '../package-info.js';

export interface HostFacts {
  hostname: string;
  /** `uname -r`. */
  kernelRelease: string;
  /** `uname -v`: build number and date. */
  kernelVersion: string;
  /** PRETTY_NAME of /etc/os-release, or null without one. */
  os: string | null;
  /** ID and VERSION_ID of /etc/os-release (`debian`, `12`). */
  osId: string | null;
  osVersionId: string | null;
  /** Node's name for the CPU architecture (`x64`, `arm64`). */
  arch: string;
  /** Online CPUs. */
  cpus: number;
  memoryBytes: number;
  nodeVersion: string;
  ebpfnetVersion: string | null;
  uid: number | null;
  root: boolean;
  /** When the host booted (ISO 8601). */
  bootTime: string;
  /** When these facts were gathered (ISO 8601). */
  collectedAt: string;
}

/** Parses /etc/os-release (shell-style KEY=value lines, values optionally quoted). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!;
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) {
      v = v.slice(1, -1).replace(/\\(["$`\\])/g, '$1');
    }
    out[m[1]!] = v;
  }
  return out;
}

/** The `btime` line of /proc/stat (seconds since the epoch), or null. */
export function parseBootTime(procStat: string): number | null {
  const m = /^btime\s+(\d+)$/m.exec(procStat);
  return m ? Number(m[1]) : null;
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

/** Gathers the host's facts (cheap: files and os calls only, no commands). */
export async function hostFacts(): Promise<HostFacts> {
  const [osRelease, procStat] = await Promise.all([
    readText('/etc/os-release').then(async (t) => t ?? (await readText('/usr/lib/os-release'))),
    readText('/proc/stat'),
  ]);
  const osr = osRelease ? parseOsRelease(osRelease) : {};
  const btime = procStat ? parseBootTime(procStat) : null;
  const bootMs = btime !== null ? btime * 1000 : Math.round(Date.now() - uptime() * 1000);
  const uid = process.getuid?.() ?? null;
  return {
    hostname: hostname(),
    kernelRelease: release(),
    kernelVersion: version(),
    os: osr.PRETTY_NAME ?? osr.NAME ?? null,
    osId: osr.ID ?? null,
    osVersionId: osr.VERSION_ID ?? null,
    arch: arch(),
    cpus: cpus().length || availableParallelism(),
    memoryBytes: totalmem(),
    nodeVersion: process.version,
    ebpfnetVersion: packageVersion(),
    uid,
    root: process.geteuid?.() === 0,
    bootTime: new Date(bootMs).toISOString(),
    collectedAt: new Date().toISOString(),
  };
}
