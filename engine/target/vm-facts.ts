// Turns what one source knows about a VM (a libvirt domain, a QEMU process, an
// inventory entry) into its VmFacts: the same shape whichever source found it.
import { mergeAddresses } from './addresses.js';
import type { Inventory, InventoryVm } from './inventory.js';
import { DOMIFADDR_TIMEOUT_MS, learnAddresses } from './learn-addresses.js';
import { libvirtDomifaddr, libvirtStatusXml, type DomifaddrAnswer, type DomifaddrSource, type LibvirtDomain, type LibvirtOptions } from './libvirt.js';
import { parseDomainXml } from './libvirt-xml.js';
import { NetView } from './netview.js';
import { isAlive, readCmdline, readPidFile, tunDescriptors } from './proc.js';
import { isQemuBinary } from './qemu-cmdline.js';
import { qemuTaps, scanQemuProcesses, type QemuProcess } from './qemu-procs.js';
import { tapFacts, type TapDescription } from './taps.js';
import { KernelThreadIndex, identifyVcpus, vhostThreads } from './threads.js';
import type { TapFacts, VmAddress, VmFacts, VmSource } from './types.js';

/** What one discovery reads once and shares between VMs. */
export class DiscoveryContext {
  readonly net = new NetView();
  readonly kernelThreads = new KernelThreadIndex();
  private procs?: Promise<QemuProcess[]>;
  private readonly domifaddrs = new Map<string, Promise<DomifaddrAnswer>>();

  constructor(
    readonly inventory: Inventory | null,
    /** How to reach libvirt (virsh -c), for the address sources it has. */
    readonly libvirt: LibvirtOptions = {},
  ) {}

  /**
   * Starts reading what every VM's facts need from the host (links, neighbours, OVS), so
   * that those commands run while libvirt and /proc are asked which VM it is.
   */
  prefetch(): void {
    for (const read of [this.net.links(), this.net.neighbours(), this.net.ovs()]) read.catch(() => undefined);
  }

  /**
   * `virsh domifaddr` of a running domain, started once: resolveVm starts the three
   * sources while libvirt is still asked for the domain, so they cost one round trip, not two.
   */
  domifaddr(name: string, source: DomifaddrSource): Promise<DomifaddrAnswer> {
    const key = `${name}\0${source}`;
    let answer = this.domifaddrs.get(key);
    if (!answer) {
      answer = libvirtDomifaddr(name, source, this.libvirt, DOMIFADDR_TIMEOUT_MS);
      this.domifaddrs.set(key, answer);
    }
    return answer;
  }

  /** Starts a running domain's address sources (the agent's only when its status file has the agent channel). */
  async prefetchLibvirtAddresses(name: string): Promise<void> {
    const status = await libvirtStatusXml(name);
    if (typeof status !== 'string') return;
    void this.domifaddr(name, 'lease');
    void this.domifaddr(name, 'arp');
    if (parseDomainXml(status).guestAgent) void this.domifaddr(name, 'agent');
  }

  qemuProcesses(): Promise<QemuProcess[]> {
    this.procs ??= scanQemuProcesses();
    return this.procs;
  }
}

interface PlannedTap {
  name: string;
  description: TapDescription;
}

const UNDESCRIBED: TapDescription = { guestMac: null, model: null, vhost: null };

/** Taps the process holds that the configuration did not name (hot-plugged through the monitor). */
async function heldTaps(pid: number | null, planned: PlannedTap[]): Promise<PlannedTap[]> {
  if (pid === null) return [];
  const named = new Set(planned.map((t) => t.name));
  return [...new Set((await tunDescriptors(pid)).values())].filter((n) => !named.has(n)).map((name) => ({ name, description: UNDESCRIBED }));
}

interface PlannedVm {
  name: string;
  source: VmSource;
  state: string;
  uuid: string | null;
  pid: number | null;
  taps: PlannedTap[];
  notes: string[];
  /** QEMU's command line (its QMP and guest agent sockets); read from /proc when not given. */
  argv?: string[] | null;
  /** The libvirt domain that runs the VM. */
  domain?: LibvirtDomain;
}

async function qemuArgv(vm: PlannedVm): Promise<string[] | null> {
  if (vm.argv !== undefined || vm.pid === null) return vm.argv ?? null;
  const argv = await readCmdline(vm.pid);
  return argv && isQemuBinary(argv[0]!) ? argv : null;
}

async function assemble(ctx: DiscoveryContext, vm: PlannedVm): Promise<VmFacts> {
  const notes = [...vm.notes];
  const argv = await qemuArgv(vm);
  // Everything at once: taps and threads are /proc and sysfs reads, the address sources
  // and QMP wait on other processes (each bounded), so the slowest decides, not the sum.
  const vhostsRead = vm.pid === null ? Promise.resolve([]) : vhostThreads(vm.pid, ctx.kernelThreads);
  const vcpusRead = vm.pid === null ? Promise.resolve(null) : identifyVcpus(vm.pid, { libvirtName: vm.domain?.name ?? null, argv });
  const guestMacs = vm.taps.map((t) => t.description.guestMac).filter((m): m is string => m !== null);
  const learning = vm.pid === null ? learnAddresses({ guestMacs, argv: null }, ctx.net) : learnAddresses({ guestMacs, argv, domain: vm.domain ?? null, domifaddr: (source) => ctx.domifaddr(vm.domain!.name, source) }, ctx.net);
  const planned = [...vm.taps, ...(await heldTaps(vm.pid, vm.taps))];
  const tapNotes = planned.map((): string[] => []);
  const taps: TapFacts[] = await Promise.all(planned.map((t, i) => tapFacts(t.name, t.description, ctx.net, tapNotes[i]!)));
  notes.push(...tapNotes.flat());
  const [vcpus, vhosts, learned] = await Promise.all([vcpusRead, vhostsRead, learning]);
  if (vcpus?.note) notes.push(vcpus.note);
  const fromInventory: VmAddress[] = (ctx.inventory?.vms.get(vm.name)?.ips ?? []).map((address) => ({ address, source: 'inventory' }));
  return {
    name: vm.name,
    source: vm.source,
    state: vm.state,
    uuid: vm.uuid,
    pid: vm.pid,
    vcpuThreads: vcpus?.threads ?? [],
    vhostThreads: vhosts,
    taps,
    ips: mergeAddresses(fromInventory, learned.addresses),
    notes,
    asked: [...learned.asked, ...(vcpus?.asked ?? [])],
  };
}

/** Where libvirt's XML and the host disagree about a tap: the first thing to know when packets vanish. */
function configurationDrift(tap: TapFacts): string | null {
  const want = tap.configured;
  if (!want || !tap.present) return null;
  const at = tap.attachment;
  if (want.sourceBridge && at?.bridge !== want.sourceBridge) {
    return `libvirt plugs ${tap.name} into ${want.sourceBridge}, but it is ${at ? `on ${at.bridge}` : 'on no bridge'}`;
  }
  if (want.virtualport === 'openvswitch' && at && at.kind !== 'ovs') return `libvirt says ${tap.name} is an Open vSwitch port, but it is on Linux bridge ${at.bridge}`;
  return null;
}

export async function libvirtVmFacts(domain: LibvirtDomain, ctx: DiscoveryContext): Promise<VmFacts> {
  const notes: string[] = [];
  let pid = domain.pid;
  if (pid === null && domain.state !== 'shut off') {
    // No usable pid file (another run directory, a stale file): the process named guest=<name>.
    pid = (await ctx.qemuProcesses()).find((p) => p.name === domain.name)?.pid ?? null;
  }
  const taps: PlannedTap[] = [];
  for (const iface of domain.xml.interfaces) {
    if (!iface.target) {
      if (pid !== null) notes.push(`a ${iface.type} interface (mac ${iface.mac ?? '?'}) has no host device in libvirt's XML`);
      continue;
    }
    taps.push({
      name: iface.target,
      description: {
        guestMac: iface.mac,
        model: iface.model,
        vhost: iface.driver === 'vhost' ? true : iface.driver === 'qemu' ? false : null,
        configured: { type: iface.type, sourceBridge: iface.sourceBridge, sourceNetwork: iface.sourceNetwork, virtualport: iface.virtualport },
      },
    });
  }
  const facts = await assemble(ctx, { name: domain.name, source: 'libvirt', state: domain.state, uuid: domain.uuid, pid, taps, notes, domain });
  for (const tap of facts.taps) {
    const drift = configurationDrift(tap);
    if (drift) facts.notes.push(drift);
  }
  return facts;
}

export async function qemuVmFacts(proc: QemuProcess, ctx: DiscoveryContext, sameName: QemuProcess[] = [proc]): Promise<VmFacts> {
  const notes = sameName.length > 1 ? [`${sameName.length} QEMU processes are named ${proc.name}: pids ${sameName.map((p) => p.pid).join(', ')}; this is pid ${proc.pid}`] : [];
  const taps: PlannedTap[] = (await qemuTaps(proc)).map((t) => ({
    name: t.name,
    description: t.nic ? { guestMac: t.nic.mac, model: t.nic.model, vhost: t.nic.vhost } : UNDESCRIBED,
  }));
  return assemble(ctx, { name: proc.name ?? `pid ${proc.pid}`, source: 'qemu', state: 'running', uuid: uuidOf(proc.argv), pid: proc.pid, taps, notes, argv: proc.argv });
}

function uuidOf(argv: string[]): string | null {
  const i = argv.indexOf('-uuid');
  return i >= 0 ? (argv[i + 1] ?? null) : null;
}

export async function inventoryVmFacts(entry: InventoryVm, ctx: DiscoveryContext): Promise<VmFacts> {
  const notes: string[] = [];
  let pid = entry.pid;
  if (entry.pidfile) {
    pid = await readPidFile(entry.pidfile);
    if (pid === null) notes.push(`no pid in ${entry.pidfile}`);
  }
  let state = 'unknown';
  if (pid !== null) {
    if (await isAlive(pid)) state = 'running';
    else {
      notes.push(`process ${pid} is not running`);
      state = 'not running';
      pid = null;
    }
  }
  const taps = entry.taps.map((t) => ({ name: t.name, description: { guestMac: t.mac, model: t.model, vhost: t.vhost } }));
  return assemble(ctx, { name: entry.name, source: 'inventory', state, uuid: null, pid, taps, notes });
}
