// Which frames are the VM's: its taps, its guest MACs, its switch's other ports and the host's
// own ports of it, as given by name and resolved against ebpfnet's namespace (`ip -j -d link
// show`), or found there; and the globals the BPF programs take them as (probes/vm.frames/vm.frames.h
// bounds each list).
import type { GlobalValue } from '../../engine/native/globals.js';
import type { Params, RawRecord } from '../../engine/probe/types.js';

/** VMF_MAX_TAPS, VMF_MAX_PORTS, VMF_MAX_HOST_PORTS, VMF_MAX_MACS of bpf/vm-frames.h. */
export const MAX_TAPS = 8;
export const MAX_PORTS = 64;
export const MAX_HOST_PORTS = 32;
export const MAX_MACS = 8;

/**
 * OVS's internal interfaces (the command's record is replayed): on the userspace datapath
 * they are taps that ovs-vswitchd holds, which nothing in the kernel tells from a VM's tap.
 */
export const OVS_INTERNAL_ARGV = ['ovs-vsctl', '--timeout=5', '--bare', '--columns=name', 'find', 'Interface', 'type=internal'];

export interface ScopeDevice {
  name: string;
  ifindex: number;
  mtu: number | null;
}

/** What the session watched (recorded with the attach). */
export interface Scope {
  /** The VM's name for summaries (the `vm` param), null when not given. */
  vm: string | null;
  devs: ScopeDevice[];
  macs: string[];
  /** The other ports; null: any device of the namespace but the taps and the host's ports. */
  ports: ScopeDevice[] | null;
  /**
   * The host's own ports of the switch (a Linux bridge's device, OVS internal ports): what the
   * host receives on one left the switch, what it transmits on one entered it. Absent in
   * sessions recorded before host ports existed.
   */
  hostPorts?: ScopeDevice[];
  /**
   * Where `hostPorts` came from: `host_ports`; `found` (ports and host_ports empty: the Linux
   * bridges the taps are on and every OVS internal port); `none` (ports given, host_ports not).
   */
  hostPortsFrom?: 'params' | 'found' | 'none';
  /** Host ports found beyond MAX_HOST_PORTS, watched as plain ports. */
  hostPortsLeftOut?: string[];
  /** Inode of ebpfnet's network namespace, whose ifindexes these are. */
  netnsInode: number;
  /** Every device of that namespace, ifindex → name (names the ports of `ports: null`). */
  devices: Record<string, string>;
}

interface Link {
  ifindex: number;
  ifname: string;
  mtu?: number;
  link_type?: string;
  master?: string;
  /** With `ip -d`: info_kind is bridge, openvswitch (an OVS internal port of the kernel datapath), tun, veth... */
  linkinfo?: { info_kind?: string };
}

const MAC_RE = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

function links(rec: RawRecord): Link[] {
  if (rec.error !== undefined) throw new Error(`ip -j link show failed: ${rec.stderr.trim() || rec.error}`);
  const list = JSON.parse(rec.stdout || '[]') as Array<Partial<Link>>;
  return list.filter((l): l is Link => typeof l.ifindex === 'number' && typeof l.ifname === 'string');
}

function strings(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String).map((s) => s.trim()).filter((s) => s !== '');
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return [];
}

/** A guest MAC in the form the findings print (lower case, colons); throws with what to give instead. */
export function macOf(raw: string): string {
  const mac = raw.toLowerCase().replace(/-/g, ':');
  if (!MAC_RE.test(mac)) throw new Error(`macs: ${JSON.stringify(raw)} is not a MAC address: give the VM's guest MACs as 52:54:00:12:34:56`);
  if (parseInt(mac.slice(0, 2), 16) & 1) throw new Error(`macs: ${mac} is a multicast address: give the VM's own (unicast) guest MACs`);
  return mac;
}

/** Whether the host's ports are to be found (neither `ports` nor `host_ports` given): OVS is then asked for its internal interfaces. */
export function findsHostPorts(params: Params): boolean {
  return strings(params.ports).length === 0 && strings(params.host_ports).length === 0;
}

/** The kernel's own device of the OVS kernel datapath: a device of kind openvswitch that carries no frame. */
const OVS_DATAPATH_DEV = 'ovs-system';

/** Why a device is the host's port of a switch, or null when the kernel does not say it is. */
function hostPortKind(l: Link | undefined): string | null {
  const kind = l?.linkinfo?.info_kind;
  if (kind === 'bridge') return "a Linux bridge's own device";
  if (kind === 'openvswitch' && l?.ifname !== OVS_DATAPATH_DEV) return 'an Open vSwitch internal port';
  return null;
}

/**
 * The host's ports when none is given: the Linux bridges the taps are plugged into, OVS's
 * internal ports of the kernel datapath (kind openvswitch) and those OVS's database lists
 * (the userspace datapath's are taps). The taps' bridges first.
 */
function foundHostPorts(all: Link[], taps: string[], ovsInternal: RawRecord | null): Link[] {
  const byName = new Map(all.map((l) => [l.ifname, l]));
  const masters = taps.map((t) => byName.get(t)?.master).filter((m): m is string => m !== undefined && byName.get(m)?.linkinfo?.info_kind === 'bridge');
  const internal = ovsInternal && ovsInternal.error === undefined ? ovsInternal.stdout.split('\n').map((s) => s.trim()).filter((s) => s !== '') : [];
  const kernelInternal = all.filter((l) => l.linkinfo?.info_kind === 'openvswitch' && l.ifname !== OVS_DATAPATH_DEV).map((l) => l.ifname);
  const names = [...new Set([...masters, ...[...kernelInternal, ...internal].sort()])].filter((n) => byName.has(n) && !taps.includes(n));
  return names.map((n) => byName.get(n)!);
}

/**
 * Resolves the params against the recorded devices and namespace (and, when the host's ports
 * are to be found, OVS's internal interfaces); throws one line saying what to fix.
 */
export function resolveScope(params: Params, linksRec: RawRecord, netnsRec: RawRecord, ovsInternal: RawRecord | null = null): Scope {
  const devNames = [...new Set(strings(params.devs))];
  const portNames = [...new Set(strings(params.ports))];
  const hostNames = [...new Set(strings(params.host_ports))];
  const macs = [...new Set(strings(params.macs).map(macOf))];
  if (devNames.length === 0) throw new Error("devs: give the VM's taps (e.g. devs=vnet3)");
  if (macs.length === 0) throw new Error("macs: give the VM's guest MACs (e.g. macs=52:54:00:12:34:56)");
  if (devNames.length > MAX_TAPS) throw new Error(`devs: at most ${MAX_TAPS} taps, got ${devNames.length}`);
  if (portNames.length > MAX_PORTS) throw new Error(`ports: at most ${MAX_PORTS} ports, got ${portNames.length}: leave ports empty to watch every device but the taps`);
  if (hostNames.length > MAX_HOST_PORTS) throw new Error(`host_ports: at most ${MAX_HOST_PORTS} host ports, got ${hostNames.length}`);
  if (macs.length > MAX_MACS) throw new Error(`macs: at most ${MAX_MACS} MACs, got ${macs.length}`);
  const both = portNames.filter((p) => devNames.includes(p));
  if (both.length > 0) throw new Error(`${both.join(', ')}: in both devs and ports; a tap of the VM is not one of the other ports`);
  const hostAndTap = hostNames.filter((p) => devNames.includes(p));
  if (hostAndTap.length > 0) throw new Error(`${hostAndTap.join(', ')}: in both devs and host_ports; a tap of the VM is not the host's port`);
  const hostAndPort = hostNames.filter((p) => portNames.includes(p));
  if (hostAndPort.length > 0) throw new Error(`${hostAndPort.join(', ')}: in both ports and host_ports; give the host's own port of the switch (the bridge device, an OVS internal port) in host_ports only`);

  const all = links(linksRec);
  const byName = new Map(all.map((l) => [l.ifname, l]));
  const resolve = (name: string, what: string): ScopeDevice => {
    const l = byName.get(name);
    if (!l) throw new Error(`${what}: no device ${name} in ebpfnet's network namespace (see \`ip link\`)`);
    return { name, ifindex: l.ifindex, mtu: typeof l.mtu === 'number' ? l.mtu : null };
  };
  const devs = devNames.map((n) => resolve(n, 'devs'));
  const ports = portNames.map((n) => resolve(n, 'ports'));
  for (const d of devs) {
    const type = byName.get(d.name)?.link_type;
    if (type !== undefined && type !== 'ether') throw new Error(`devs: ${d.name} is not an Ethernet device (link/${type}): give the VM's taps`);
  }
  for (const p of ports) {
    // Its frames go the other way round: listed as a port, the host's traffic would be lost.
    const kind = hostPortKind(byName.get(p.name));
    if (kind) throw new Error(`ports: ${p.name} is ${kind}, the host's port of the switch: give it in host_ports`);
  }
  const finding = portNames.length === 0 && hostNames.length === 0;
  const found = finding ? foundHostPorts(all, devNames, ovsInternal) : [];
  const hostPorts = finding ? found.slice(0, MAX_HOST_PORTS).map((l) => resolve(l.ifname, 'host_ports')) : hostNames.map((n) => resolve(n, 'host_ports'));
  const leftOut = found.slice(MAX_HOST_PORTS).map((l) => l.ifname);
  const inode = /net:\[(\d+)\]/.exec(netnsRec.stdout)?.[1];
  if (inode === undefined) throw new Error(`cannot tell ebpfnet's network namespace from "${netnsRec.stdout.trim()}"`);
  return {
    vm: typeof params.vm === 'string' && params.vm !== '' ? params.vm : null,
    devs,
    macs,
    ports: ports.length === 0 ? null : ports,
    hostPorts,
    hostPortsFrom: hostNames.length > 0 ? 'params' : finding ? 'found' : 'none',
    ...(leftOut.length > 0 ? { hostPortsLeftOut: leftOut } : {}),
    netnsInode: Number(inode),
    devices: Object.fromEntries(all.map((l) => [String(l.ifindex), l.ifname])),
  };
}

function u32Array(values: number[], size: number): Uint8Array {
  const b = Buffer.alloc(size * 4);
  values.forEach((v, i) => b.writeUInt32LE(v, i * 4));
  return b;
}

/** The `const volatile` filters of bpf/vm-frames.bpf.c. */
export function scopeGlobals(s: Scope): Record<string, GlobalValue> {
  const macs = Buffer.alloc(MAX_MACS * 6);
  s.macs.forEach((m, i) => Buffer.from(m.replace(/:/g, ''), 'hex').copy(macs, i * 6));
  const ports = s.ports ?? [];
  const hosts = s.hostPorts ?? [];
  return {
    tap_ifindex: u32Array(s.devs.map((d) => d.ifindex), MAX_TAPS),
    n_taps: s.devs.length,
    host_ifindex: u32Array(hosts.map((d) => d.ifindex), MAX_HOST_PORTS),
    n_host_ports: hosts.length,
    port_ifindex: u32Array(ports.map((d) => d.ifindex), MAX_PORTS),
    n_ports: ports.length,
    vm_macs: macs,
    n_macs: s.macs.length,
    targ_netns: s.netnsInode,
  };
}

/** A device of the watched namespace by ifindex. */
export function deviceName(s: Scope, ifindex: number): string {
  return s.devices[String(ifindex)] ?? `if${ifindex}`;
}

/** How the VM is called in a summary. */
export function vmLabel(s: Scope): string {
  return s.vm ?? `the VM on ${s.devs.map((d) => d.name).join(', ')}`;
}
