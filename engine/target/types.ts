// What ebpfnet knows about a VM: where it was found, its QEMU process and threads,
// and each tap with what it is plugged into. Plain JSON, so it goes into run.json
// as the run's target and runbooks can template probe params from it.

export type VmSource = 'libvirt' | 'qemu' | 'inventory';

export interface VmFacts {
  name: string;
  source: VmSource;
  /**
   * libvirt's state (`running`, `paused`, `shut off`, ...); for a QEMU process
   * `running`; for an inventory entry `running` when its process is alive, else `not running`.
   */
  state: string;
  uuid: string | null;
  /** The QEMU (or other VMM) process, null when it is not running. */
  pid: number | null;
  /** vCPU threads (named `CPU n/KVM` or `CPU n/TCG` by QEMU's debug-threads=on). */
  vcpuThreads: VcpuThread[];
  /** vhost-net workers: threads or kernel threads named `vhost-<pid>`. */
  vhostThreads: VhostThread[];
  taps: TapFacts[];
  /** Addresses from the inventory and from the host's neighbour table (by guest MAC). */
  ips: VmAddress[];
  /** What could not be found out, in plain words. */
  notes: string[];
}

export interface VcpuThread {
  tid: number;
  /** The vCPU index (the n of `CPU n/KVM`). */
  index: number;
  name: string;
}

export interface VhostThread {
  tid: number;
  name: string;
  /**
   * Since Linux 6.4 vhost workers are threads of the QEMU process; before,
   * kernel threads of their own.
   */
  kernelThread: boolean;
}

export interface VmAddress {
  address: string;
  source: 'inventory' | 'neighbour';
  /** For neighbour entries: the device the entry is on and its state (REACHABLE, STALE, ...). */
  dev?: string;
  state?: string;
}

export interface TapFacts {
  name: string;
  /** Whether the device exists on the host now. */
  present: boolean;
  ifindex: number | null;
  /** The tap's own MAC (host side). libvirt sets it to the guest MAC with fe: as first byte. */
  hostMac: string | null;
  /** The MAC the guest's NIC uses, from libvirt's XML, QEMU's command line or the inventory. */
  guestMac: string | null;
  /** The guest NIC model (`virtio-net-pci`, `virtio`, `e1000`), when known. */
  model: string | null;
  /** Whether vhost-net was asked for (libvirt driver, QEMU vhost=on); null when not said. */
  vhost: boolean | null;
  mtu: number | null;
  operstate: string | null;
  /** Tun flags the kernel reports: `vnet_hdr`, `multi_queue`, `persist`. */
  flags: string[];
  /** Queue counts from /sys/class/net/<tap>/queues. */
  queues: { rx: number; tx: number };
  /** /sys/class/net/<tap>/statistics, read once when the facts were gathered. */
  counters: Record<string, number>;
  /** What the tap is plugged into, null when nothing. */
  attachment: Attachment | null;
  /** How libvirt's XML describes the interface (libvirt VMs only). */
  configured?: ConfiguredInterface;
}

export type Attachment = OvsAttachment | LinuxBridgeAttachment;

export interface OvsAttachment {
  kind: 'ovs';
  bridge: string;
  port: string;
  /** OpenFlow port number, as flows and `ovs-ofctl dump-ports` name it. */
  ofport: number | null;
  /** `system` (kernel datapath) or `netdev` (userspace datapath). */
  datapathType: string;
  uplinks: Uplink[];
}

export interface LinuxBridgeAttachment {
  kind: 'linux-bridge';
  bridge: string;
  /** The bridge's own ifindex. */
  ifindex: number | null;
  uplinks: Uplink[];
}

/** A port of the same bridge that leads off the host or to another network, not to a VM. */
export interface Uplink {
  name: string;
  /** `physical`, `veth`, `bond`, `vlan`, `vxlan`, ..., or for OVS-only ports their type (`patch`, `geneve`). */
  kind: string;
  ifindex: number | null;
  /** A patch port's peer port, when known. */
  peer?: string;
}

export interface ConfiguredInterface {
  /** libvirt's `<interface type=...>`: bridge, network, direct, ethernet. */
  type: string;
  sourceBridge: string | null;
  sourceNetwork: string | null;
  /** `<virtualport type=...>`: openvswitch, or null for a Linux bridge. */
  virtualport: string | null;
}
