// The facts a runbook templates probe params from, flattened from VmFacts: the VM's first
// tap and what it is plugged into, the devices along its path, its addresses and threads.
// Runbooks say `${target.path.tap}` rather than `${target.taps[0].attachment.bridge}`.
import type { VmFacts } from './types.js';

export interface VmPath {
  /** The first tap present on the host ('' when none). */
  tap: string;
  taps: string[];
  /** The bridge the first tap is plugged into ('' when none). */
  bridge: string;
  /** `ovs`, `linux-bridge`, or `none`. */
  bridgeKind: 'ovs' | 'linux-bridge' | 'none';
  /** OVS datapath type (`netdev`, `system`), '' otherwise. */
  datapathType: string;
  uplinks: string[];
  /** Every device along the path: taps, the Linux bridge itself, uplinks. */
  devices: string[];
  /** The VM's first known IPv4 address ('' when none). */
  ip: string;
  ips: string[];
  /** The QEMU pid (0 when not running). */
  pid: number;
  vcpuTids: number[];
  vhostTids: number[];
}

export function vmPath(facts: VmFacts): VmPath {
  const taps = facts.taps.filter((t) => t.present).map((t) => t.name);
  const first = facts.taps.find((t) => t.present && t.attachment) ?? facts.taps.find((t) => t.present);
  const att = first?.attachment ?? null;
  const uplinks = [...new Set(facts.taps.flatMap((t) => t.attachment?.uplinks.filter((u) => u.ifindex !== null).map((u) => u.name) ?? []))];
  const linuxBridges = [...new Set(facts.taps.flatMap((t) => (t.attachment?.kind === 'linux-bridge' ? [t.attachment.bridge] : [])))];
  const ips = facts.ips.map((a) => a.address).filter((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
  return {
    tap: first?.name ?? '',
    taps,
    bridge: att?.bridge ?? '',
    bridgeKind: att?.kind ?? 'none',
    datapathType: att?.kind === 'ovs' ? att.datapathType : '',
    uplinks,
    devices: [...new Set([...taps, ...linuxBridges, ...uplinks])],
    ip: ips[0] ?? '',
    ips: [...new Set(ips)],
    pid: facts.pid ?? 0,
    vcpuTids: facts.vcpuThreads.map((t) => t.tid),
    vhostTids: facts.vhostThreads.map((t) => t.tid),
  };
}
