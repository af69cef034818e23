// ovs.drops on hosts whose OVS runs the kernel datapath (openvswitch.ko loaded): the BPF
// programs of probes/ovs.drops/ovs.drops.bpf.c count packets entering the datapath, upcalls and their failures,
// and the drops of those packets (OVS drop reasons on 6.4+, any drop reason before), in the
// kernel. The session is recorded as capture records (`kernel-*`), so a replay re-parses it
// without loading anything. On a userspace-datapath host (this project's lab) it never runs.
import { readFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { BTF_DIR, btfEnums, readVmlinuxBtf } from '../../engine/host/btf.js';
import { subsystemNamesOf, subsystemReasonsOf } from '../lib/drops/subsystems.js';
import { tracepointFormat } from '../../engine/host/tracefs.js';
import type { U64 } from '../../engine/native/btf-layout.js';
import { u32Key } from '../../engine/native/map.js';
import { BpfObject, bpfObjectPath } from '../../engine/native/object.js';
import { runBpfSession, type SessionWork } from '../../engine/probe/bpf-session.js';
import { countsOf, hex, rootDevices } from '../../engine/probe/bpf-values.js';
import type { ProbeIO, RawRecord } from '../../engine/probe/types.js';
import { captureSymbols, parseReasonNames } from '../lib/drop-reasons.js';
import { kprobeLoad, readKprobeSession } from '../lib/kprobe-session.js';
import type { KernelDropsData } from './data.js';
import { addCount } from '../lib/tally.js';

/** The programs of ovs.bpf.c and where each attaches (probes/ovs.drops/ovs.drops.h documents what they count). */
export const OVS_PROGRAMS = [
  { program: 'ovs_rx_kprobe', kind: 'kprobe', target: 'ovs_vport_receive' },
  { program: 'ovs_process_kprobe', kind: 'kprobe', target: 'ovs_dp_process_packet' },
  { program: 'ovs_upcall_kprobe', kind: 'kprobe', target: 'ovs_dp_upcall' },
  { program: 'ovs_upcall_kretprobe', kind: 'kretprobe', target: 'ovs_dp_upcall' },
  { program: 'ovs_kfree_skb', kind: 'tp_btf', target: 'kfree_skb' },
  { program: 'ovs_consume_skb', kind: 'tp_btf', target: 'consume_skb' },
] as const;

/** `enum ovs_hook` of bpf/ovs.h. */
const HOOKS = ['vport_receive', 'process', 'upcall', 'upcall_error', 'drop_reason', 'drop_after_rx'] as const;
type Hook = (typeof HOOKS)[number];

export interface KernelFilters {
  ifindex: number;
  /** IPv4 (4 bytes) or IPv6 (16 bytes) addresses, network order; one family for both. */
  saddr: Uint8Array | null;
  daddr: Uint8Array | null;
  proto: number;
  /** A VM's MAC (6 bytes): with `ifindex` its port, the VM's packets both ways (entered on its port, or to this MAC). */
  vmMac?: Uint8Array | null;
}

const v4 = (a: Uint8Array | null | undefined) => (a?.length === 4 ? a : new Uint8Array(4));
const v6 = (a: Uint8Array | null | undefined) => (a?.length === 16 ? a : new Uint8Array(16));

/** Opens ovs.drops.bpf.o with its filters set (nothing reaches the kernel before load()). */
export function openOvsObject(filters?: KernelFilters): BpfObject {
  return BpfObject.open(bpfObjectPath('ovs.drops'), {
    globals: {
      targ_ifindex: filters?.ifindex ?? 0,
      targ_saddr: v4(filters?.saddr),
      targ_daddr: v4(filters?.daddr),
      targ_saddr6: v6(filters?.saddr),
      targ_daddr6: v6(filters?.daddr),
      targ_ipv6: filters?.saddr?.length === 16 || filters?.daddr?.length === 16,
      targ_proto: filters?.proto ?? 0,
      targ_vm_mac: filters?.vmMac?.length === 6 ? filters.vmMac : new Uint8Array(6),
    },
  });
}

interface DumpCapture {
  windowMs: number;
  unkeyed: number;
  entries: Array<{ hook: number; ifindex: number; reason: number; err: number; location: string; count: number }>;
  devices: Record<string, string>;
}

interface ReasonsCapture {
  /** Core drop reasons, from the kfree_skb tracepoint's format. */
  core: Record<string, string>;
  /** The openvswitch module's drop reasons, from its BTF (absent before 6.4). */
  ovs: Record<string, string>;
}

/**
 * The OVS module's drop reasons from its BTF (value → name), read with the drop library's BTF
 * reader as the kernel names subsystems (bpftool's C dump of the module took minutes under
 * TCG); none when the module, its BTF or the subsystem (kernel < 6.4) is absent.
 */
export async function readOvsReasons(dir = BTF_DIR): Promise<Record<string, string>> {
  const [mod, vmlinux] = await Promise.all([readFile(`${dir}/openvswitch`).catch(() => null), readVmlinuxBtf(dir)]);
  if (!mod || !vmlinux) return {};
  try {
    const id = Object.entries(subsystemNamesOf(btfEnums(vmlinux))).find(([, name]) => name === 'openvswitch')?.[0];
    return id === undefined ? {} : subsystemReasonsOf(btfEnums(mod, vmlinux), Number(id));
  } catch {
    return {};
  }
}

/**
 * Loads and attaches what attaches (kprobes may not: then the tracepoints still count), runs
 * `window` on the session's IO, reads the maps and names the drop locations.
 */
export async function runKernelSession(io: ProbeIO, filters: KernelFilters, window: SessionWork): Promise<void> {
  await io.capture('kernel-reasons', async () => {
    const format = (await tracepointFormat('skb:kfree_skb')) ?? '';
    const core = Object.fromEntries([...parseReasonNames(format)].map(([k, v]) => [String(k), v]));
    const capture: ReasonsCapture = { core, ovs: await readOvsReasons() };
    return JSON.stringify(capture);
  });

  const readCounts = async (o: BpfObject, windowMs: number): Promise<DumpCapture> => {
    const entries: DumpCapture['entries'] = countsOf(o.map('counts'), (k: { location: U64; hook: number; ifindex: number; reason: number; err: number }) => ({
      location: hex(k.location),
      hook: k.hook,
      ifindex: k.ifindex,
      reason: k.reason,
      err: k.err,
    }));
    entries.sort((a, b) => a.hook - b.hook || b.count - a.count || a.ifindex - b.ifindex || a.reason - b.reason || a.location.localeCompare(b.location));
    return { windowMs, unkeyed: Number(o.map('unkeyed').sumU64(u32Key(0))), entries, devices: await rootDevices().catch(() => ({})) };
  };
  // The dump record, live or replayed (null when nothing attached): a replay asks for the symbols alike.
  const dump = await runBpfSession(io, { prefix: 'kernel-', ...kprobeLoad(() => openOvsObject(filters), OVS_PROGRAMS), window, read: (o, w) => readCounts(o, Math.round(w.ms)) });
  if (dump) {
    const { entries } = JSON.parse(dump.stdout) as DumpCapture;
    await captureSymbols(io, 'kernel-symbols', entries.filter((e) => e.location !== '0x0').map((e) => e.location));
  }
}

export type { KernelDropsData } from './data.js';

const ERRNO_NAMES = new Map(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** The kernel session's finding, from its capture records; null when it did not run. */
export function parseKernel(records: RawRecord[]): KernelDropsData | null {
  const find = (name: string) => records.find((r) => r.op === 'capture' && r.name === name && r.error === undefined);
  const session = readKprobeSession<DumpCapture>(records, 'kernel-');
  if (!session) return null;
  const reasons = JSON.parse(find('kernel-reasons')?.stdout ?? '{"core":{},"ovs":{}}') as ReasonsCapture;
  const dump: DumpCapture = session.dump ?? { windowMs: 0, unkeyed: 0, entries: [], devices: {} };
  const syms = JSON.parse(find('kernel-symbols')?.stdout ?? '{}') as Record<string, string>;
  const { overhead } = session;
  const device = (ifindex: number) => (ifindex === 0 ? '(no device)' : (dump.devices[String(ifindex)] ?? `if${ifindex}`));
  const reasonName = (r: number) => reasons.ovs[String(r)] ?? reasons.core[String(r)] ?? `REASON_${r}`;

  const data: KernelDropsData = {
    attached: session.attached,
    failed: session.failed,
    windowMs: dump.windowMs,
    received: {},
    lookups: 0,
    upcalls: {},
    upcallErrors: {},
    dropReasons: {},
    dropsAfterReceive: [],
    drops: 0,
    ...(dump.unkeyed > 0 ? { lost: dump.unkeyed } : {}),
    ...(overhead ? { overhead } : {}),
  };
  const after = new Map<string, KernelDropsData['dropsAfterReceive'][number]>();
  for (const e of dump.entries) {
    const hook: Hook | undefined = HOOKS[e.hook];
    if (hook === 'vport_receive') addCount(data.received, device(e.ifindex), e.count);
    else if (hook === 'process') data.lookups += e.count;
    else if (hook === 'upcall') addCount(data.upcalls, device(e.ifindex), e.count);
    else if (hook === 'upcall_error') addCount(data.upcallErrors, ERRNO_NAMES.get(e.err) ?? `errno ${e.err}`, e.count);
    else if (hook === 'drop_reason') addCount(data.dropReasons, reasonName(e.reason), e.count);
    else if (hook === 'drop_after_rx') {
      const location = syms[e.location] ?? e.location;
      const k = `${e.reason}|${location}|${e.ifindex}`;
      const g = after.get(k) ?? { reason: reasonName(e.reason), location, device: device(e.ifindex), count: 0, inOvs: / \[openvswitch\]$/.test(location) };
      g.count += e.count;
      after.set(k, g);
    }
  }
  data.dropsAfterReceive = [...after.values()].sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
  const sum = (m: Record<string, number>) => Object.values(m).reduce((n, v) => n + v, 0);
  // A packet OVS forwarded is the same skb in the output device and, over a veth, in the
  // receiver's stack: its drops there (NO_SOCKET, a tap's FULL_RING) are listed, not OVS's.
  data.drops = sum(data.upcallErrors) + sum(data.dropReasons) + data.dropsAfterReceive.reduce((n, d) => n + (d.inOvs ? d.count : 0), 0);
  return data;
}
