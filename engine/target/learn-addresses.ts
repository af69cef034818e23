// Learns a VM's addresses from what a hypervisor has, all sources at once, each bounded:
// the host's neighbour table (empty when the host has no address on the VMs' bridge),
// libvirt's `domifaddr` (its DHCP leases, the guest agent it talks to, the ARP table),
// and for a VM started without libvirt the QEMU guest agent on the socket its command line
// names. A source that fails says why in `asked`; it never fails discovery.
import { canonicalAddress, isHostOnly, normalMac } from './addresses.js';
import { guestAgentInterfaces } from './guest-agent.js';
import { libvirtDomifaddr, type DomifaddrAnswer, type DomifaddrSource, type LibvirtDomain } from './libvirt.js';
import type { NetView } from './netview.js';
import { GUEST_AGENT_PORT, qemuGuestAgentSocket } from './qemu-cmdline.js';
import type { AddressSource, SourceAsked, VmAddress } from './types.js';

/** The guest agent's whole exchange: a guest without a running agent costs this much, no more. */
export const GUEST_AGENT_TIMEOUT_MS = 500;
/** Each `virsh domifaddr`: about 60 ms when libvirtd is well; a loaded host (or an emulated CPU, where 800 ms was too short for an answer) takes longer. */
export const DOMIFADDR_TIMEOUT_MS = 2000;

export interface AddressLearning {
  addresses: VmAddress[];
  asked: SourceAsked[];
}

export interface LearnFrom {
  /** The guest MACs of the VM's NICs: an address is the VM's when it is on one of them. */
  guestMacs: string[];
  /** The running QEMU's command line, for its guest agent socket; null when not a QEMU process. */
  argv: string[] | null;
  /** The libvirt domain, when libvirt runs the VM: its agent socket is libvirt's, so libvirt is asked. */
  domain?: LibvirtDomain | null;
  /** Runs `virsh domifaddr` for the domain (default libvirtDomifaddr): discovery may have started it already. */
  domifaddr?: (source: DomifaddrSource) => Promise<DomifaddrAnswer>;
}

type SourceResult = { addresses: VmAddress[]; note: string | null };

async function timed(source: AddressSource, run: () => Promise<SourceResult>): Promise<{ addresses: VmAddress[]; asked: SourceAsked }> {
  const start = performance.now();
  const r = await run().catch((err: Error): SourceResult => ({ addresses: [], note: err.message }));
  return { addresses: r.addresses, asked: { source, found: r.addresses.length, ms: Math.round(performance.now() - start), note: r.note } };
}

async function neighbours(macs: Set<string>, net: NetView): Promise<SourceResult> {
  if (macs.size === 0) return { addresses: [], note: 'no guest MAC known' };
  const found = (await net.neighbours())
    .filter((n) => macs.has(n.lladdr))
    .map((n): VmAddress => ({ address: n.dst, source: 'neighbour', dev: n.dev, state: n.state }));
  return { addresses: found, note: found.length ? null : 'no entry with a guest MAC (the host has none when it has no address on the bridge)' };
}

/** Keeps the addresses that belong to the VM's NICs (by MAC) and say which VM it is. */
function own(addresses: VmAddress[], macs: Set<string>): VmAddress[] {
  return addresses.filter((a) => a.mac !== undefined && macs.has(a.mac) && !isHostOnly(a.address));
}

async function fromLibvirt(domain: LibvirtDomain, source: DomifaddrSource, macs: Set<string>, ask: (source: DomifaddrSource) => Promise<DomifaddrAnswer>): Promise<SourceResult> {
  if (source === 'agent' && !domain.xml.guestAgent) return { addresses: [], note: `guest agent not configured (no ${GUEST_AGENT_PORT} channel in the domain)` };
  const r = await ask(source);
  if ('error' in r) return { addresses: [], note: r.error };
  const addresses = own(
    r.rows.map((row) => ({
      address: canonicalAddress(row.address),
      source: `libvirt-${source}` as const,
      dev: row.name,
      ...(row.mac ? { mac: row.mac } : {}),
      ...(row.prefix !== null ? { prefix: row.prefix } : {}),
    })),
    macs,
  );
  return { addresses, note: addresses.length ? null : r.rows.length ? `no address on the VM's MACs among ${r.rows.length}` : 'none' };
}

async function fromGuestAgent(argv: string[], macs: Set<string>): Promise<SourceResult> {
  const socket = qemuGuestAgentSocket(argv);
  if (!socket) return { addresses: [], note: `guest agent not configured (no virtserialport named ${GUEST_AGENT_PORT})` };
  if (!socket.path || !socket.server) return { addresses: [], note: `the guest agent's chardev ${socket.id} is not a socket QEMU serves at a path` };
  try {
    const ifaces = await guestAgentInterfaces(socket.path, GUEST_AGENT_TIMEOUT_MS);
    const addresses = own(
      ifaces.flatMap((i) =>
        i.addresses.map((a) => ({
          address: canonicalAddress(a.address),
          source: 'guest-agent' as const,
          dev: i.name,
          ...(i.mac ? { mac: i.mac } : {}),
          ...(a.prefix !== null ? { prefix: a.prefix } : {}),
        })),
      ),
      macs,
    );
    return { addresses, note: addresses.length ? null : `the agent lists no address on the VM's MACs (${ifaces.map((i) => i.name).join(', ') || 'no interface'})` };
  } catch (err) {
    const msg = (err as Error).message;
    return { addresses: [], note: /within \d+ ms/.test(msg) ? `guest agent ${msg} (is qemu-ga running in the guest?)` : `guest agent: ${msg}` };
  }
}

/** Every source that applies to the VM, asked at once; addresses in source order, not yet merged. */
export async function learnAddresses(vm: LearnFrom, net: NetView): Promise<AddressLearning> {
  const macs = new Set(vm.guestMacs.map(normalMac));
  const runs: Array<Promise<{ addresses: VmAddress[]; asked: SourceAsked }>> = [timed('neighbour', () => neighbours(macs, net))];
  if (vm.domain) {
    const ask = vm.domifaddr ?? ((source: DomifaddrSource) => libvirtDomifaddr(vm.domain!.name, source, {}, DOMIFADDR_TIMEOUT_MS));
    for (const source of ['lease', 'agent', 'arp'] as const) runs.push(timed(`libvirt-${source}`, () => fromLibvirt(vm.domain!, source, macs, ask)));
  } else if (vm.argv) {
    runs.push(timed('guest-agent', () => fromGuestAgent(vm.argv!, macs)));
  }
  const done = await Promise.all(runs);
  return { addresses: done.flatMap((d) => d.addresses), asked: done.map((d) => d.asked) };
}
