// Finding the host tools ebpfnet drives (tc, ip, bpftool, ...) and asking their version, without a shell.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { runCommand } from '../exec.js';

/** Root tools live in sbin directories that a user's PATH often lacks. */
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Debian packages providing the binaries ebpfnet uses (bookworm names). */
const DEBIAN_PACKAGES: Record<string, string> = {
  bpftool: 'bpftool',
  bpftrace: 'bpftrace',
  clang: 'clang',
  'llvm-strip': 'llvm',
  tc: 'iproute2',
  ip: 'iproute2',
  bridge: 'iproute2',
  ss: 'iproute2',
  ethtool: 'ethtool',
  'ovs-appctl': 'openvswitch-switch',
  'ovs-vsctl': 'openvswitch-switch',
  'ovs-ofctl': 'openvswitch-switch',
  'ovs-dpctl': 'openvswitch-switch',
  virsh: 'libvirt-clients',
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  chromium: 'chromium',
  'chromium-browser': 'chromium',
  pdftotext: 'poppler-utils',
  nft: 'nftables',
  conntrack: 'conntrack',
  ping: 'iputils-ping',
  mount: 'mount',
  setpriv: 'util-linux',
  unshare: 'util-linux',
  nsenter: 'util-linux',
  tcpdump: 'tcpdump',
};

/** How each binary prints its version; the default tries `--version`, then `-V`. */
const VERSION_FLAGS: Record<string, string[][]> = {
  ip: [['-V']],
  tc: [['-V']],
  bridge: [['-V']],
  ss: [['-V']],
  pdftotext: [['-v']],
  bpftool: [['version']],
};
const DEFAULT_VERSION_FLAGS = [['--version'], ['-V']];

/** The Debian package that ships `name`, or undefined when ebpfnet does not know it. */
export function debianPackageFor(name: string): string | undefined {
  return DEBIAN_PACKAGES[name];
}

/** One line telling how to get `name`: `apt-get install iproute2`. */
export function installHint(name: string, pkg?: string): string {
  const known = pkg ?? debianPackageFor(name);
  return known
    ? `apt-get install ${known}`
    : `install the package that provides it (apt-file search bin/${name})`;
}

/** The directories searched, in order: PATH, then the sbin directories PATH lacks. */
export function searchDirs(): string[] {
  const fromPath = (process.env.PATH ?? '').split(delimiter).filter((d) => d.length > 0);
  const dirs: string[] = [];
  for (const dir of [...fromPath, ...SBIN_DIRS]) if (!dirs.includes(dir)) dirs.push(dir);
  return dirs;
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The absolute path of executable `name` (searched in PATH, /usr/local/sbin, /usr/sbin, /sbin),
 * or null. A name containing `/` is checked as given.
 */
export async function findBinary(name: string): Promise<string | null> {
  if (name.length === 0) return null;
  if (name.includes('/')) return (await isExecutableFile(name)) ? name : null;
  for (const dir of searchDirs()) {
    const candidate = join(dir, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return null;
}

/** The first of `names` that exists, with its path (for tools shipped under several names). */
export async function findFirstBinary(names: string[]): Promise<{ name: string; path: string } | null> {
  for (const name of names) {
    const path = await findBinary(name);
    if (path) return { name, path };
  }
  return null;
}

function firstLine(text: string): string | undefined {
  return text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.length > 0);
}

const versionCache = new Map<string, Promise<string | null>>();

/**
 * Best effort: the first line a binary prints for `--version` (or `-V`, or its own flag),
 * or null when it is missing or says nothing that looks like a version. Cached per process.
 */
export function binaryVersion(name: string, timeoutMs = 3000): Promise<string | null> {
  let cached = versionCache.get(name);
  if (!cached) {
    cached = probeVersion(name, timeoutMs);
    versionCache.set(name, cached);
  }
  return cached;
}

async function probeVersion(name: string, timeoutMs: number): Promise<string | null> {
  const path = await findBinary(name);
  if (!path) return null;
  const base = name.includes('/') ? name.slice(name.lastIndexOf('/') + 1) : name;
  for (const args of VERSION_FLAGS[base] ?? DEFAULT_VERSION_FLAGS) {
    try {
      const r = await runCommand(path, args, { timeoutMs, maxBuffer: 1024 * 1024 });
      if (r.timedOut) continue;
      let line = firstLine(r.stdout || '') ?? firstLine(r.stderr || '');
      if (!line || !/\d/.test(line)) continue;
      if (r.exitCode !== 0 && /unknown|invalid|unrecognized|usage|error/i.test(line)) continue;
      // Some tools (bpftool) start the line with their own argv[0].
      if (line.startsWith(`${path} `)) line = `${base}${line.slice(path.length)}`;
      return line.length > 160 ? `${line.slice(0, 157)}...` : line;
    } catch {
      continue;
    }
  }
  return null;
}
