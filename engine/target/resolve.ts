// Finds VMs on this host, asking in order libvirt, the running QEMU processes,
// then the static inventory: the first source that knows a name describes that
// VM. `resolveVm` answers `--vm NAME`; `discoverVms` lists them all (`ebpfnet vms`).
import { closest } from '../yaml/suggest.js';
import { inventoryLocation, loadInventory, type Inventory } from './inventory.js';
import { libvirtDomain, libvirtMayKnow, listLibvirtDomains, type LibvirtList } from './libvirt.js';
import type { VmFacts, VmSource } from './types.js';
import { DiscoveryContext, inventoryVmFacts, libvirtVmFacts, qemuVmFacts } from './vm-facts.js';

export interface ResolveOptions {
  /** Inventory file; else $EBPFNET_INVENTORY, else /etc/ebpfnet/inventory.yaml (which may be absent). */
  inventory?: string;
  /** libvirt connection URI for virsh -c (default: virsh's own). */
  libvirtUri?: string;
  /** Environment to read EBPFNET_INVENTORY from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface SourceStatus {
  source: VmSource;
  /** Whether the source could be asked (virsh installed and connected, inventory file present). */
  available: boolean;
  /** Why it could not be asked, or which file was read. */
  detail: string | null;
  /** The VMs this source named. */
  names: string[];
}

export interface Discovery {
  vms: VmFacts[];
  sources: SourceStatus[];
}

/** A name no source knows; the message lists what was found, one line. */
export class VmNotFoundError extends Error {
  constructor(
    readonly vm: string,
    readonly sources: SourceStatus[],
  ) {
    super(notFoundMessage(vm, sources));
    this.name = 'VmNotFoundError';
  }
}

function notFoundMessage(vm: string, sources: SourceStatus[]): string {
  const groups = sources.filter((s) => s.names.length).map((s) => `${s.names.join(', ')} (${s.source})`);
  let text = `no VM named "${vm}"; found: ${groups.length ? groups.join(', ') : 'none'}`;
  const guess = closest(vm, sources.flatMap((s) => s.names));
  if (guess) text += `; did you mean "${guess}"?`;
  // A missing virsh just means no libvirt here; one that cannot connect hides VMs, so say so.
  const libvirt = sources.find((s) => s.source === 'libvirt');
  if (libvirt && !libvirt.available && libvirt.detail !== 'virsh not installed') text += `; libvirt not asked: ${libvirt.detail}`;
  return text;
}

function openInventory(opts: ResolveOptions): { inventory: Inventory | null; status: (names: string[]) => SourceStatus } {
  const location = inventoryLocation(opts.inventory, opts.env);
  const inventory = loadInventory(location);
  return {
    inventory,
    status: (names) => ({ source: 'inventory', available: inventory !== null, detail: inventory ? location.path : `${location.path} absent`, names }),
  };
}

function libvirtStatus(list: LibvirtList, names: string[]): SourceStatus {
  return list.available
    ? { source: 'libvirt', available: true, detail: null, names }
    : { source: 'libvirt', available: false, detail: list.reason, names: [] };
}

/**
 * The facts of VM `name`, from the first source that knows it. Throws
 * VmNotFoundError (listing the VMs found) or InventoryError (a broken inventory
 * file, every problem at its line and column).
 */
export async function resolveVm(name: string, opts: ResolveOptions = {}): Promise<VmFacts> {
  const inv = openInventory(opts);
  const libvirtOpts = opts.libvirtUri ? { uri: opts.libvirtUri } : {};
  const ctx = new DiscoveryContext(inv.inventory, libvirtOpts);
  ctx.prefetch();
  // Both asked at once: the QEMU scan is cheap, and wasted only when libvirt knows the VM.
  // libvirt is asked for the domain itself, not for its list first: one round trip less,
  // and the list is only needed to say what exists when nothing has that name.
  const mayBeLibvirt = libvirtMayKnow(name, libvirtOpts);
  if (mayBeLibvirt) void ctx.prefetchLibvirtAddresses(name);
  const [domain, procs] = await Promise.all([mayBeLibvirt ? libvirtDomain(name, libvirtOpts) : null, ctx.qemuProcesses()]);
  if (domain) return libvirtVmFacts(domain, ctx);
  const named = procs.filter((p) => p.name === name);
  if (named[0]) return qemuVmFacts(named[0], ctx, named);
  const entry = inv.inventory?.vms.get(name);
  if (entry) return inventoryVmFacts(entry, ctx);

  const libvirt = await listLibvirtDomains(libvirtOpts);
  const libvirtNames = libvirt.available ? libvirt.names : [];
  const qemuNames = unique(procs.map((p) => p.name).filter((n): n is string => n !== null && !libvirtNames.includes(n)));
  const inventoryNames = [...(inv.inventory?.vms.keys() ?? [])].filter((n) => !libvirtNames.includes(n) && !qemuNames.includes(n));
  throw new VmNotFoundError(name, [
    libvirtStatus(libvirt, libvirtNames),
    { source: 'qemu', available: true, detail: null, names: qemuNames },
    inv.status(inventoryNames),
  ]);
}

/** Every VM on this host: libvirt's domains, then QEMU processes libvirt does not run, then inventory entries not found otherwise. */
export async function discoverVms(opts: ResolveOptions = {}): Promise<Discovery> {
  const inv = openInventory(opts);
  const libvirtOpts = opts.libvirtUri ? { uri: opts.libvirtUri } : {};
  const ctx = new DiscoveryContext(inv.inventory, libvirtOpts);
  ctx.prefetch();
  void ctx.qemuProcesses();
  const libvirt = await listLibvirtDomains(libvirtOpts);
  const vms: VmFacts[] = [];

  const domains = libvirt.available ? await mapLimit(libvirt.names, 8, (n) => libvirtDomain(n, libvirtOpts)) : [];
  // Side by side: each VM's address sources wait on libvirt or an agent, not on the CPU.
  vms.push(...(await mapLimit(domains.filter((d) => d !== null), 8, (d) => libvirtVmFacts(d, ctx))));
  const libvirtNames = vms.map((v) => v.name);
  const claimed = new Set(vms.map((v) => v.pid).filter((p) => p !== null));

  const procs = (await ctx.qemuProcesses()).filter((p) => !claimed.has(p.pid));
  const unnamed = procs.filter((p) => p.name === null);
  const byName = new Map<string, typeof procs>();
  for (const p of procs) if (p.name !== null && !libvirtNames.includes(p.name)) byName.set(p.name, [...(byName.get(p.name) ?? []), p]);
  const qemuVms = await mapLimit([...byName.values()], 8, (same) => qemuVmFacts(same[0]!, ctx, same));
  vms.push(...qemuVms);
  const qemuStatus: SourceStatus = {
    source: 'qemu',
    available: true,
    detail: unnamed.length ? `${unnamed.length} QEMU process(es) without -name, not listed: pid ${unnamed.map((p) => p.pid).join(', ')}` : null,
    names: qemuVms.map((v) => v.name),
  };

  const listed = new Set(vms.map((v) => v.name));
  const entries = [...(inv.inventory?.vms.values() ?? [])].filter((e) => !listed.has(e.name));
  const inventoryVms = await mapLimit(entries, 8, (e) => inventoryVmFacts(e, ctx));
  vms.push(...inventoryVms);

  return {
    vms,
    sources: [libvirtStatus(libvirt, libvirtNames), qemuStatus, inv.status(inventoryVms.map((v) => v.name))],
  };
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}

/** `fn` over `items` with at most `limit` running at once, results in order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
