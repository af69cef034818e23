// Turns what one source knows about a VM (a libvirt domain, a QEMU process, an
// inventory entry) into its VmFacts: the same shape whichever source found it.
import type { Inventory, InventoryVm } from './inventory.js';
import type { LibvirtDomain } from './libvirt.js';
import { NetView } from './netview.js';
import { isAlive, readPidFile, tunDescriptors } from './proc.js';
import { qemuTaps, scanQemuProcesses, type QemuProcess } from './qemu-procs.js';
import { tapFacts, type TapDescription } from './taps.js';
import { KernelThreadIndex, vcpuThreads, vhostThreads } from './threads.js';
import type { TapFacts, VmAddress, VmFacts, VmSource } from './types.js';

/** What one discovery reads once and shares between VMs. */
export class DiscoveryContext {
  readonly net = new NetView();
  readonly kernelThreads = new KernelThreadIndex();
  private procs?: Promise<QemuProcess[]>;

  constructor(readonly inventory: Inventory | null) {}

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

async function neighbourAddresses(taps: TapFacts[], net: NetView): Promise<VmAddress[]> {
  const macs = new Set(taps.map((t) => t.guestMac).filter((m): m is string => m !== null));
  if (macs.size === 0) return [];
  return (await net.neighbours())
    .filter((n) => macs.has(n.lladdr))
    .map((n) => ({ address: n.dst, source: 'neighbour' as const, dev: n.dev, state: n.state }));
}

async function assemble(
  ctx: DiscoveryContext,
  vm: { name: string; source: VmSource; state: string; uuid: string | null; pid: number | null; taps: PlannedTap[]; notes: string[] },
): Promise<VmFacts> {
  const notes = [...vm.notes];
  // Taps, vCPU and vhost threads are read at once: each is a few /proc and sysfs reads or an `ip` call.
  const vhostsRead = vm.pid === null ? Promise.resolve([]) : vhostThreads(vm.pid, ctx.kernelThreads);
  const vcpusRead = vm.pid === null ? Promise.resolve([]) : vcpuThreads(vm.pid);
  const planned = [...vm.taps, ...(await heldTaps(vm.pid, vm.taps))];
  const tapNotes = planned.map((): string[] => []);
  const taps: TapFacts[] = await Promise.all(planned.map((t, i) => tapFacts(t.name, t.description, ctx.net, tapNotes[i]!)));
  notes.push(...tapNotes.flat());
  const [vcpus, vhosts] = await Promise.all([vcpusRead, vhostsRead]);
  if (vm.pid !== null && vcpus.length === 0) {
    notes.push(`the vCPU threads of pid ${vm.pid} are not named (QEMU names them with -name ...,debug-threads=on)`);
  }
  const fromInventory: VmAddress[] = (ctx.inventory?.vms.get(vm.name)?.ips ?? []).map((address) => ({ address, source: 'inventory' }));
  const known = new Set(fromInventory.map((a) => a.address));
  const ips = [...fromInventory, ...(await neighbourAddresses(taps, ctx.net)).filter((a) => !known.has(a.address))];
  return {
    name: vm.name,
    source: vm.source,
    state: vm.state,
    uuid: vm.uuid,
    pid: vm.pid,
    vcpuThreads: vcpus,
    vhostThreads: vhosts,
    taps,
    ips,
    notes,
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
  const facts = await assemble(ctx, { name: domain.name, source: 'libvirt', state: domain.state, uuid: domain.uuid, pid, taps, notes });
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
  return assemble(ctx, { name: proc.name ?? `pid ${proc.pid}`, source: 'qemu', state: 'running', uuid: uuidOf(proc.argv), pid: proc.pid, taps, notes });
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
