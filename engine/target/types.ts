// What ebpfnet knows about a VM: where it was found, its QEMU process and threads,
// and each tap with what it is plugged into. Plain JSON, so it goes into run.json
// as the run's target and runbooks can template probe params from it.

/** What a run diagnoses: this host, or a VM on it with its facts (VmFacts, flattened). */
export interface Target {
  kind: 'host' | 'vm';
  name: string;
  [fact: string]: unknown;
}

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
  /** vCPU threads, each with how it was identified (libvirt's status, its name, QMP, KVM guest time). */
  vcpuThreads: VcpuThread[];
  /** vhost-net workers: threads or kernel threads named `vhost-<pid>`. */
  vhostThreads: VhostThread[];
  taps: TapFacts[];
  /** The VM's addresses, one entry per address, each with where it came from. */
  ips: VmAddress[];
  /** What could not be found out, in plain words. */
  notes: string[];
  /**
   * Every source discovery asked for the VM's addresses and vCPU threads, what it gave and
   * how long it took; a source that gave nothing says why (`guest agent not configured`).
   * Absent in facts recorded before these sources existed.
   */
  asked?: SourceAsked[];
}

/** Where a VM's address was learned. `frames`: seen as the source of the VM's own frames on its tap (withLearnedAddresses). */
export type AddressSource = 'inventory' | 'neighbour' | 'libvirt-lease' | 'libvirt-agent' | 'libvirt-arp' | 'guest-agent' | 'frames';

/** How a vCPU thread was identified: its name (debug-threads=on), libvirt's status file, QMP query-cpus-fast, or guest time under KVM. */
export type VcpuSource = 'name' | 'libvirt' | 'qmp' | 'kvm';

export interface SourceAsked {
  /** An address source, or `vcpus:<VcpuSource>` for a way of finding vCPU threads. */
  source: AddressSource | `vcpus:${VcpuSource}`;
  /** How many addresses (that are the VM's) or threads it gave. */
  found: number;
  ms: number;
  /** Why it gave nothing or was not asked, in plain words; null when it answered. */
  note: string | null;
}

export interface VcpuThread {
  tid: number;
  /**
   * The vCPU index (QEMU's cpu-index, libvirt's vcpu id, the n of `CPU n/KVM`); for `kvm`
   * the thread's rank by thread id, since QEMU creates vCPU threads in index order.
   */
  index: number;
  /** The thread's name (comm) as the kernel has it. */
  name: string;
  source: VcpuSource;
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
  source: AddressSource;
  /**
   * For neighbour entries the host device the entry is on; for libvirt's lease and arp
   * sources the tap; for the agents the guest's interface name.
   */
  dev?: string;
  /** For neighbour entries: the entry's state (REACHABLE, STALE, ...). */
  state?: string;
  /** The guest MAC the address belongs to (lower case), when the source says. */
  mac?: string;
  /** The prefix length, when the source says (libvirt, the guest agent). */
  prefix?: number;
  /** For `frames`: how it was seen (`arp`, `nd`, `ipv4`, ... as the probe says). */
  via?: string;
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
  /** Every kernel device that is a port of the bridge (this tap, other VMs' taps, uplinks), internal ports apart. */
  ports?: string[];
  /**
   * The bridge's internal ports that are kernel devices: the host's own ports of the switch (on
   * the kernel datapath devices of kind openvswitch, on the userspace datapath taps that
   * ovs-vswitchd holds). What the host transmits on one enters the switch; what the switch
   * sends the host is received on one. Absent in facts recorded before.
   */
  hostPorts?: string[];
}

export interface LinuxBridgeAttachment {
  kind: 'linux-bridge';
  bridge: string;
  /** The bridge's own ifindex. */
  ifindex: number | null;
  uplinks: Uplink[];
  /** Every port of the bridge (brif/): this tap, other VMs' taps, uplinks. */
  ports?: string[];
  /**
   * The host's own port of the switch: the bridge's device (`[bridge]`). What the host
   * transmits on it enters the bridge; what the bridge passes up to the host is received on
   * it. Absent in facts recorded before.
   */
  hostPorts?: string[];
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
