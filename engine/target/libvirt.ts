// VMs libvirt manages, asked through `virsh` on a read-only connection. libvirt
// opens each tap itself and hands QEMU a descriptor, so the tap names come from
// the domain XML (<target dev=...>), not from QEMU's command line.
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { runTool } from './command.js';
import { normalMac } from './addresses.js';
import { firstElement, parseDomainXml, parseStatusVcpus, type DomainXml } from './libvirt-xml.js';
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
const CONFIG_DIR = '/etc/libvirt/qemu';

/**
 * Whether libvirt may know a domain called `name`, answered from files rather than a
 * round trip to libvirtd (hundreds of ms on a busy host). False only when sure: root on
 * the default connection (qemu:///system: no URI given, none in $LIBVIRT_DEFAULT_URI or
 * libvirt.conf), and neither the domain's config (/etc/libvirt/qemu/NAME.xml, every
 * persistent domain) nor its status (/run/libvirt/qemu/NAME.xml, every running one) exists.
 */
export function libvirtMayKnow(name: string, opts: LibvirtOptions = {}, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!onSystemConnection(opts, env) || name.includes('/') || name.startsWith('.')) return true;
  return existsSync(`${CONFIG_DIR}/${name}.xml`) || existsSync(`${RUN_DIR}/${name}.xml`);
}

/** Whether virsh would talk to qemu:///system as root, whose files are under /etc/libvirt/qemu and /run/libvirt/qemu. */
function onSystemConnection(opts: LibvirtOptions, env: NodeJS.ProcessEnv = process.env): boolean {
  if (opts.uri || env.LIBVIRT_DEFAULT_URI || process.geteuid?.() !== 0) return false;
  try {
    if (/^\s*uri_default\s*=/m.test(readFileSync('/etc/libvirt/libvirt.conf', 'utf8'))) return false;
  } catch {
    // no libvirt.conf: the default stands
  }
  return true;
}

/** `<domstatus state=...>` words as `virsh dominfo` prints them (virDomainState). */
const STATE_WORDS: Record<string, string> = {
  nostate: 'no state',
  running: 'running',
  blocked: 'idle',
  paused: 'paused',
  shutdown: 'in shutdown',
  shutoff: 'shut off',
  crashed: 'crashed',
  pmsuspended: 'pmsuspended',
};

/**
 * A running domain from libvirt's status file, without virsh: its state, QEMU pid and
 * the live domain XML it wraps (what `virsh dumpxml` prints). Null when the file is not
 * there or not readable, or names a process that is not that domain's QEMU.
 */
async function libvirtDomainFromStatus(name: string): Promise<LibvirtDomain | null> {
  const text = await libvirtStatusXml(name);
  if (typeof text !== 'string') return null;
  const head = firstElement(text, 'domstatus');
  const pid = head?.pid !== undefined && /^\d+$/.test(head.pid) ? Number(head.pid) : null;
  if (pid === null || (await libvirtQemuPid(name)) !== pid) return null;
  const at = text.search(/<domain[\s>]/);
  const xml = parseDomainXml(at >= 0 ? text.slice(at) : '');
  return {
    name,
    state: STATE_WORDS[head!.state ?? ''] ?? head!.state ?? 'unknown',
    uuid: xml.uuid,
    persistent: existsSync(`${CONFIG_DIR}/${name}.xml`),
    pid,
    xml,
  };
}

function virsh(opts: LibvirtOptions, args: string[], { readonly = true, timeoutMs }: { readonly?: boolean; timeoutMs?: number } = {}) {
  return runTool('virsh', [...(opts.uri ? ['-c', opts.uri] : []), ...(readonly ? ['--readonly'] : []), ...args], timeoutMs);
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

/**
 * One domain's state, uuid, interfaces and QEMU pid, from its status file when running
 * (root, qemu:///system), else `virsh dominfo` and `dumpxml`; null when libvirt does not
 * know it (or virsh is missing or cannot connect).
 */
export async function libvirtDomain(name: string, opts: LibvirtOptions = {}): Promise<LibvirtDomain | null> {
  // As root on qemu:///system a running domain's status file says all of it: no virsh
  // (each costs a process and a round trip to libvirtd, hundreds of ms on a busy host).
  if (onSystemConnection(opts) && !name.includes('/') && !name.startsWith('.')) {
    const running = await libvirtDomainFromStatus(name);
    if (running) return running;
  }
  // Both at once: each virsh is a process and a round trip to libvirtd.
  const [info, xml] = await Promise.all([virsh(opts, ['dominfo', '--domain', name]), virsh(opts, ['dumpxml', '--domain', name])]);
  if (!info?.ok) return null;
  const fields = parseDominfo(info.stdout);
  // virsh takes an id or a uuid for a name too: only the domain of that name is it.
  if (fields.Name !== undefined && fields.Name !== name) return null;
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

/**
 * The status file libvirt keeps while a domain runs (/run/libvirt/qemu/<name>.xml, root
 * only): <domstatus> around the live domain XML, with what libvirt learnt from QEMU.
 */
export async function libvirtStatusXml(name: string): Promise<string | { error: string }> {
  if (name.includes('/') || name.startsWith('.')) return { error: 'not a libvirt domain name' };
  const file = `${RUN_DIR}/${name}.xml`;
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    return { error: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
}

/** The vCPU threads libvirt recorded for the domain's QEMU process `pid` in its status file; null when unreadable or another process's. */
export async function libvirtStatusVcpus(name: string, pid: number): Promise<{ vcpus: Array<{ index: number; tid: number }> } | { error: string }> {
  const file = `${RUN_DIR}/${name}.xml`;
  const xml = await libvirtStatusXml(name);
  if (typeof xml !== 'string') return xml;
  const status = parseStatusVcpus(xml);
  if (status.pid !== pid) return { error: `${file} is about pid ${status.pid ?? '?'}, not ${pid}` };
  return { vcpus: status.vcpus };
}

/** Where `virsh domifaddr --source` looks: dnsmasq's leases of libvirt networks, the guest agent, the host's ARP table. */
export type DomifaddrSource = 'lease' | 'agent' | 'arp';

export type DomifaddrAnswer = { rows: DomifaddrRow[] } | { error: string };

export interface DomifaddrRow {
  /** The interface: the host tap for lease and arp, the guest's own name for agent. */
  name: string;
  mac: string | null;
  family: 'ipv4' | 'ipv6';
  address: string;
  prefix: number | null;
}

const MAC_RE = /^[0-9a-f]{1,2}(:[0-9a-f]{1,2}){5}$/i;

/**
 * The table `virsh domifaddr` prints: a heading (translated, so not read), a rule, then
 * ` NAME  MAC  ipv4|ipv6  ADDRESS/PREFIX` rows. Without --full, an interface's further
 * addresses show `-` for name and MAC; an interface without MAC leaves that column blank.
 */
export function parseDomifaddr(text: string): DomifaddrRow[] {
  const out: DomifaddrRow[] = [];
  const lines = text.split('\n');
  const rule = lines.findIndex((l) => /^-{10,}\s*$/.test(l.trim()));
  let last: { name: string; mac: string | null } | null = null;
  for (const line of lines.slice(rule + 1)) {
    const words = line.trim().split(/\s+/);
    const at = words.findIndex((w) => w === 'ipv4' || w === 'ipv6');
    if (at < 1 || words[at + 1] === undefined) continue;
    const [address, prefix] = words[at + 1]!.split('/');
    let name = words[0]!;
    let mac: string | null = at >= 2 && MAC_RE.test(words[1]!) ? normalMac(words[1]!) : null;
    if (name === '-' && last) ({ name, mac } = last);
    else last = { name, mac };
    out.push({ name, mac, family: words[at] as 'ipv4' | 'ipv6', address: address!, prefix: prefix !== undefined && /^\d+$/.test(prefix) ? Number(prefix) : null });
  }
  return out;
}

/**
 * `virsh domifaddr --source SOURCE --full` for a running domain. lease and arp go over the
 * read-only connection; libvirt refuses the agent source on one (virDomainInterfaceAddresses
 * checks), so that one asks on a read-write connection, which only root (or a libvirt
 * admin) has. The error is virsh's, without its "Failed to query" preamble.
 */
export async function libvirtDomifaddr(
  name: string,
  source: DomifaddrSource,
  opts: LibvirtOptions = {},
  timeoutMs = 1000,
): Promise<DomifaddrAnswer> {
  const r = await virsh(opts, ['domifaddr', '--domain', name, '--source', source, '--full'], { readonly: source !== 'agent', timeoutMs });
  if (!r) return { error: 'virsh not installed' };
  if (!r.ok) return { error: r.error.replace(/^Failed to query for interfaces addresses:\s*/, '') || 'virsh failed' };
  return { rows: parseDomifaddr(r.stdout) };
}
