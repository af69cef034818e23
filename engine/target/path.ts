// The facts a runbook templates probe params from, flattened from VmFacts: the VM's first
// tap and what it is plugged into, the devices along its path, its addresses and threads.
// Runbooks say `${target.path.tap}` rather than `${target.taps[0].attachment.bridge}`.
import { canonicalAddress, isIpv4, isIpv6, isLinkLocal6, normalMac } from './addresses.js';
import type { VmFacts } from './types.js';

export interface VmPath {
  /** The first tap present on the host ('' when none). */
  tap: string;
  taps: string[];
  /** The guest MACs of the VM's taps, lower case. */
  macs: string[];
  /** The bridge the first tap is plugged into ('' when none). */
  bridge: string;
  /** `ovs`, `linux-bridge`, or `none`. */
  bridgeKind: 'ovs' | 'linux-bridge' | 'none';
  /** OVS datapath type (`netdev`, `system`), '' otherwise. */
  datapathType: string;
  uplinks: string[];
  /**
   * Every kernel device that is a port of the bridge(s) the VM's taps are plugged into,
   * other than the VM's own taps and the host's ports: other VMs' taps, uplinks.
   */
  ports: string[];
  /**
   * The host's own ports of those bridges: each Linux bridge's device, the OVS bridges'
   * internal ports that are kernel devices. Frames cross them the other way round: what the
   * host transmits on one enters the switch, what it receives on one left it (vm.frames'
   * `host_ports`).
   */
  hostPorts: string[];
  /** OpenFlow port numbers of the VM's taps on OVS. */
  ofports: number[];
  /** Every device along the path: taps, the Linux bridge itself, uplinks. */
  devices: string[];
  /** The VM's first known IPv4 address ('' when none). */
  ip: string;
  /** The VM's first IPv6 address that is not link-local ('' when none). */
  ip6: string;
  /** Every address of the VM that is not link-local: IPv4 first, then IPv6. */
  ips: string[];
  /** The VM's IPv6 link-local (fe80::/10) addresses. */
  linkLocal: string[];
  /** The QEMU pid (0 when not running). */
  pid: number;
  vcpuTids: number[];
  vhostTids: number[];
}

const unique = <T>(items: T[]): T[] => [...new Set(items)];

export function vmPath(facts: VmFacts): VmPath {
  const taps = facts.taps.filter((t) => t.present).map((t) => t.name);
  const first = facts.taps.find((t) => t.present && t.attachment) ?? facts.taps.find((t) => t.present);
  const att = first?.attachment ?? null;
  const uplinks = unique(facts.taps.flatMap((t) => t.attachment?.uplinks.filter((u) => u.ifindex !== null).map((u) => u.name) ?? []));
  const linuxBridges = unique(facts.taps.flatMap((t) => (t.attachment?.kind === 'linux-bridge' ? [t.attachment.bridge] : [])));
  const own = new Set(facts.taps.map((t) => t.name));
  // Facts recorded before hostPorts existed: a Linux bridge's device is known all the same.
  const hostPorts = unique(facts.taps.flatMap((t) => t.attachment?.hostPorts ?? (t.attachment?.kind === 'linux-bridge' ? [t.attachment.bridge] : []))).sort();
  const addresses = unique(facts.ips.map((a) => canonicalAddress(a.address)));
  const ip4 = addresses.filter(isIpv4);
  const ip6 = addresses.filter((a) => isIpv6(a) && !isLinkLocal6(a));
  return {
    tap: first?.name ?? '',
    taps,
    macs: unique(facts.taps.map((t) => t.guestMac).filter((m): m is string => m !== null).map(normalMac)),
    bridge: att?.bridge ?? '',
    bridgeKind: att?.kind ?? 'none',
    datapathType: att?.kind === 'ovs' ? att.datapathType : '',
    uplinks,
    ports: unique(facts.taps.flatMap((t) => t.attachment?.ports ?? [])).filter((p) => !own.has(p) && !hostPorts.includes(p)).sort(),
    hostPorts,
    ofports: unique(facts.taps.flatMap((t) => (t.attachment?.kind === 'ovs' && t.attachment.ofport !== null ? [t.attachment.ofport] : []))),
    devices: unique([...taps, ...linuxBridges, ...uplinks]),
    ip: ip4[0] ?? '',
    ip6: ip6[0] ?? '',
    ips: [...ip4, ...ip6],
    linkLocal: addresses.filter(isLinkLocal6),
    pid: facts.pid ?? 0,
    vcpuTids: unique(facts.vcpuThreads.map((t) => t.tid)),
    vhostTids: facts.vhostThreads.map((t) => t.tid),
  };
}
