// VMs libvirt manages, asked through `virsh` on a read-only connection. libvirt
// opens each tap itself and hands QEMU a descriptor, so the tap names come from
// the domain XML (<target dev=...>), not from QEMU's command line.
import { runTool } from './command.js';
import { parseDomainXml, type DomainXml } from './libvirt-xml.js';
import { isAlive, readCmdline, readPidFile } from './proc.js';
import { isQemuBinary, qemuVmName } from './qemu-cmdline.js';

export interface LibvirtOptions {
  /** libvirt connection URI (virsh -c); by default virsh's own ($LIBVIRT_DEFAULT_URI, or qemu:///system for root). */
  uri?: string;
}

export type LibvirtList = { available: true; names: string[] } | { available: false; reason: string };

export interface LibvirtDomain {
  name: string;
  /** `running`, `paused`, `shut off`, ... */
  state: string;
  uuid: string | null;
  persistent: boolean | null;
  /** The QEMU process, null when the domain does not run. */
  pid: number | null;
  xml: DomainXml;
}

const RUN_DIR = '/run/libvirt/qemu';

function virsh(opts: LibvirtOptions, args: string[]) {
  return runTool('virsh', [...(opts.uri ? ['-c', opts.uri] : []), '--readonly', ...args]);
}

/** Every domain libvirt knows (running or not); unavailable when virsh is missing or cannot connect. */
export async function listLibvirtDomains(opts: LibvirtOptions = {}): Promise<LibvirtList> {
  const r = await virsh(opts, ['list', '--all', '--name']);
  if (!r) return { available: false, reason: 'virsh not installed' };
  if (!r.ok) return { available: false, reason: `virsh list failed: ${r.error}` };
  const names = r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return { available: true, names };
}

/** `Key:   value` lines of `virsh dominfo`. */
export function parseDominfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line);
    if (m) out[m[1]!.trim()] = m[2]!.trim();
  }
  return out;
}

/** One domain's state, uuid, interfaces and QEMU pid; null when libvirt does not know it. */
export async function libvirtDomain(name: string, opts: LibvirtOptions = {}): Promise<LibvirtDomain | null> {
  const info = await virsh(opts, ['dominfo', '--domain', name]);
  if (!info?.ok) return null;
  const fields = parseDominfo(info.stdout);
  const xml = await virsh(opts, ['dumpxml', '--domain', name]);
  const parsed = xml?.ok ? parseDomainXml(xml.stdout) : { uuid: null, interfaces: [] };
  const state = fields.State ?? 'unknown';
  const running = state === 'running' || state === 'paused' || state === 'in shutdown' || state === 'pmsuspended';
  return {
    name,
    state,
    uuid: fields.UUID ?? parsed.uuid,
    persistent: fields.Persistent === undefined ? null : fields.Persistent === 'yes',
    pid: running ? await libvirtQemuPid(name) : null,
    xml: parsed,
  };
}

/**
 * The QEMU process of a running domain: libvirt's pid file, checked against the
 * process it names (a stale file after a crash names nothing, or someone else).
 */
export async function libvirtQemuPid(name: string): Promise<number | null> {
  if (name.includes('/') || name.startsWith('.')) return null;
  const pid = await readPidFile(`${RUN_DIR}/${name}.pid`);
  if (pid === null || !(await isAlive(pid))) return null;
  const argv = await readCmdline(pid);
  return argv && isQemuBinary(argv[0]!) && qemuVmName(argv) === name ? pid : null;
}
