// ebpfnet vms: prints the VMs discovery finds, or one VM's facts.
import { parseDuration } from '../../../duration.js';
import { discoverVms, resolveVm, type Discovery, type VmAddress, type VmFacts } from '../../../target/index.js';
import { CliError } from '../../../exit-codes.js';
import { listenForAddresses } from './listen.js';
import { withTargetErrors } from './target.js';

export interface VmsFlags {
  inventory?: string;
  json?: boolean;
  /** How long to listen to the VMs' own frames for their addresses ('0' does not). */
  listen?: string;
}

function listenMs(flags: VmsFlags): number {
  const ms = flags.listen === '0' ? 0 : parseDuration(flags.listen ?? '1s');
  if (ms === undefined || ms < 0) throw new CliError(`--listen: expected a duration like 1s or 500ms (0 does not listen), got "${flags.listen}"`);
  return ms;
}

export async function vmsAction(name: string | undefined, flags: VmsFlags): Promise<void> {
  const opts = flags.inventory ? { inventory: flags.inventory } : {};
  const listen = listenMs(flags);
  if (name !== undefined) {
    const [vm] = await listenForAddresses([await withTargetErrors(() => resolveVm(name, opts))], listen);
    process.stdout.write(flags.json ? `${JSON.stringify(vm, null, 2)}\n` : describeVm(vm!));
    return;
  }
  const found = await withTargetErrors(() => discoverVms(opts));
  const vms = await listenForAddresses(found.vms, listen);
  const all = { ...found, vms };
  process.stdout.write(flags.json ? `${JSON.stringify(all, null, 2)}\n` : vmTable(all));
}

function bridgeOf(vm: VmFacts): string {
  const bridges = vm.taps.map((t) => {
    const at = t.attachment;
    if (!at) return '-';
    return at.kind === 'ovs' ? `${at.bridge} (ovs ${at.datapathType})` : `${at.bridge} (bridge)`;
  });
  return [...new Set(bridges)].join(', ') || '-';
}

export function vmTable(found: Discovery): string {
  const rows = found.vms.map((vm) => [
    vm.name,
    vm.source,
    vm.state,
    vm.pid === null ? '-' : String(vm.pid),
    vm.taps.map((t) => t.name).join(',') || '-',
    bridgeOf(vm),
    addressesOf(vm),
  ]);
  const header = ['NAME', 'SOURCE', 'STATE', 'PID', 'TAPS', 'BRIDGE', 'ADDRESSES'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = found.vms.length ? [line(header), ...rows.map(line)] : ['no VMs found'];
  for (const s of found.sources) {
    if (!s.available && s.source === 'libvirt' && s.detail !== 'virsh not installed') out.push(`libvirt not asked: ${s.detail}`);
    if (s.source === 'qemu' && s.detail) out.push(s.detail);
  }
  return `${out.join('\n')}\n`;
}

const VCPU_SOURCE: Record<string, string> = {
  name: 'by name',
  libvirt: "from libvirt's status",
  qmp: 'from QMP query-cpus-fast',
  kvm: 'by KVM guest time',
};

/**
 * The table's short form: each address once with where it came from, `10.0.0.2 (frames,
 * libvirt-agent)`; link-local ones left out (every guest has one, `vms <name>` shows them).
 */
function addressesOf(vm: VmFacts): string {
  const sources = new Map<string, string[]>();
  for (const a of vm.ips) {
    if (a.address.toLowerCase().startsWith('fe80:')) continue;
    const seen = sources.get(a.address) ?? [];
    if (!seen.includes(a.source)) seen.push(a.source);
    sources.set(a.address, seen);
  }
  return [...sources].map(([address, from]) => `${address} (${from.join(', ')})`).join(', ') || '-';
}

/** `10.0.0.2/24 (libvirt-lease, 52:54:00:12:34:56 on vnet0)`. */
function describeAddress(a: VmAddress): string {
  const where = `${a.source}${a.mac ? `, ${a.mac}` : ''}${a.dev ? ` on ${a.dev}` : ''}${a.via ? ` via ${a.via}` : ''}`;
  return `${a.address}${a.prefix !== undefined ? `/${a.prefix}` : ''} (${where})`;
}

export function describeVm(vm: VmFacts): string {
  const out = [
    `${vm.name}: ${vm.state} (from ${vm.source})`,
    `  pid ${vm.pid ?? '-'}${vm.uuid ? `, uuid ${vm.uuid}` : ''}`,
    `  vCPU threads: ${vm.vcpuThreads.map((t) => `${t.tid} (vCPU ${t.index}, ${VCPU_SOURCE[t.source] ?? t.source}${t.name ? `, named ${t.name}` : ''})`).join(', ') || '-'}`,
    `  vhost threads: ${vm.vhostThreads.map((t) => `${t.tid}${t.kernelThread ? ' (kernel)' : ''}`).join(', ') || '-'}`,
  ];
  for (const t of vm.taps) {
    out.push(`  tap ${t.name}${t.present ? ` (ifindex ${t.ifindex}, ${t.operstate})` : ' (absent)'}: guest MAC ${t.guestMac ?? '?'}, host MAC ${t.hostMac ?? '?'}, queues rx ${t.queues.rx}/tx ${t.queues.tx}${t.flags.length ? `, ${t.flags.join(' ')}` : ''}`);
    const at = t.attachment;
    if (at?.kind === 'ovs') out.push(`    on OVS bridge ${at.bridge} (${at.datapathType} datapath), port ${at.port}, ofport ${at.ofport ?? '?'}`);
    else if (at) out.push(`    on Linux bridge ${at.bridge}`);
    else out.push('    on no bridge');
    if (at) out.push(`    uplinks: ${at.uplinks.map((u) => `${u.name} (${u.kind}${u.peer ? ` to ${u.peer}` : ''})`).join(', ') || '-'}`);
    // The host's own ports of the switch (its device, OVS internal ports): where the host's address on it would be.
    if (at?.hostPorts?.length) out.push(`    host's ports: ${at.hostPorts.join(', ')}`);
  }
  out.push(`  IPs: ${vm.ips.map(describeAddress).join(', ') || '-'}`);
  const asked = vm.asked ?? [];
  if (asked.length) out.push(`  asked: ${asked.map((a) => `${a.source} ${a.found ? `${a.found} found` : (a.note ?? 'none')} (${a.ms} ms)`).join('; ')}`);
  for (const n of vm.notes) out.push(`  note: ${n}`);
  return `${out.join('\n')}\n`;
}
