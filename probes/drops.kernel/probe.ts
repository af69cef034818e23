// drops.kernel: every skb the kernel frees as a drop (skb:kfree_skb with a reason other than
// SKB_CONSUMED), counted in the kernel by {reason, location, device, netns, stack, flags} with
// the native driver (probes/drops.kernel/drops.kernel.bpf.c), optionally only a VM's, with the
// host's copies of bridged frames told apart. The session and its counts are the library's
// (probes/lib/drops/), which the other drop probes run too; this is their finding on its own.
import { overheadTable } from '../../engine/probe/overhead.js';
import type { BarChart, Params, ProbeDefinition, ProbeResult, RawRecord, TableSpec } from '../../engine/probe/types.js';
import { FAMILY_PATTERNS } from '../lib/drops/families.js';
import { functionOf, readDrops } from '../lib/drops/read.js';
import { SCOPE_LIMITS } from '../lib/drops/scope.js';
import { collectDrops, DROPS_BUDGET, DROPS_FILTER_PARAMS, DROPS_REQUIREMENTS, DROPS_TOP_PARAM, STACK_EVERY, STACK_FIRST } from '../lib/drops/session.js';
import { durationParam } from '../lib/params.js';
import { DATA, type DropsData } from './data.js';
import { nativeRun } from '../lib/bpf-probe.js';

export type { DropsData } from './data.js';
export type { DropsAttach } from '../lib/drops/session.js';

function parse(records: RawRecord[], params: Params): ProbeResult<DropsData> {
  const { data, groups: topGroups, loadMs, missingSubsystems } = readDrops(records, params);
  const top = Math.max(1, (params.top as number | undefined) ?? 10);
  const { total, hostCopies, atOtherTaps, topStacks, overhead, scope } = data;
  const secs = `${(data.windowMs / 1000).toFixed(1)}s`;
  const whose = scope ? " of the VM's" : '';
  let summary: string;
  if (total === 0) summary = `no kernel drops${whose} in ${secs} (${data.method})`;
  else {
    const parts = topGroups.slice(0, 3).map((g) => `${g.reason} ${g.count} at ${functionOf(g.location)}`);
    const more = topGroups.length > 3 ? `, +${topGroups.length - 3} more` : '';
    summary = `${total}${whose} drop${total === 1 ? '' : 's'} in ${secs}: ${parts.join(', ')}${more}`;
  }
  if (hostCopies.total > 0) summary += `; ${hostCopies.total} host cop${hostCopies.total === 1 ? 'y' : 'ies'} of bridged frames apart`;
  if (atOtherTaps.total > 0) summary += `; ${atOtherTaps.total} at other VMs' taps (${Object.keys(atOtherTaps.byDevice).join(', ')}) apart`;
  if (scope?.missingDevs) summary += ` (devices not found: ${scope.missingDevs.join(', ')})`;
  if (missingSubsystems) summary += ` (${missingSubsystems.join('; ')})`;
  if (total > 0 && data.reasonsFrom === 'location') summary += ' (this kernel gives no drop reasons: named by where they were dropped)';
  if (overhead?.stopped) summary += ` (stopped: ${overhead.stopped})`;

  const bar = (title: string, map: Record<string, number>): BarChart => ({
    kind: 'bar',
    title,
    unit: 'drops',
    bars: Object.entries(map)
      .slice(0, top)
      .map(([label, value]) => ({ label, value })),
  });
  const tables: TableSpec[] = [
    { title: 'Drops by reason, location and device', columns: ['reason', 'location', 'device', 'drops'], rows: topGroups.slice(0, top).map((g) => [g.reason, g.location, g.device, g.count]) },
    {
      title: 'Attach',
      columns: ['program', 'method', 'target', 'BTF', 'load ms', 'attach ms'],
      rows: data.attach.map((a) => [a.program, a.method, a.target, a.btf ?? '', a.loadMs ?? loadMs, a.attachMs]),
    },
  ];
  if (scope) {
    const s = scope;
    tables.push({
      title: "The VM's scope",
      columns: ['by', 'values', 'drops matched'],
      rows: [
        ['device', [...s.devs.filter((d) => !s.missingDevs?.includes(d)), ...(s.missingDevs ?? []).map((d) => `${d} (not found)`)].join(', '), s.matchedBy.dev],
        ['MAC', s.macs.join(', '), s.matchedBy.mac],
        ['address', s.ips.join(', '), s.matchedBy.ip],
      ],
    });
  }
  if (atOtherTaps.total > 0) {
    tables.push({
      title: "The VM's frames dropped at other VMs' taps (their rings, qdiscs or filters; not counted as this VM's loss)",
      columns: ['tap', 'drops'],
      rows: Object.entries(data.atOtherTaps.byDevice).map(([d, n]) => [d, n]),
    });
  }
  if (hostCopies.total > 0) {
    tables.push({
      title: "Host copies of bridged frames (the host's own stack discarded them; not counted as loss)",
      columns: ['reason', 'drops'],
      rows: Object.entries(data.hostCopies.byReason).map(([r, n]) => [r, n]),
    });
  }
  if (overhead) tables.push(overheadTable(overhead));
  if (topStacks.length > 0) {
    tables.push({
      title: `Top kernel stacks (sampled: per CPU the first ${STACK_FIRST} drops, then 1 in ${Number(params.stack_every ?? STACK_EVERY)})`,
      columns: ['sampled drops', 'reason', 'stack (innermost first)'],
      rows: topStacks.map((s) => [s.count, s.reason, s.frames.slice(0, 12).join(' ← ')]),
    });
  }
  return {
    data,
    summary,
    severity: total > 0 ? 'critical' : 'info',
    charts: total > 0 ? [bar('Drops by reason', data.byReason), bar('Drops by location', data.byLocation)] : [],
    tables,
  };
}

export const dropsKernel: ProbeDefinition<DropsData> = {
  id: 'drops.kernel',
  title: 'Kernel packet drops by reason',
  description: `Counts every packet the kernel frees as a drop (\`skb:kfree_skb\` with a drop reason other than \`SKB_CONSUMED\`), aggregated in the kernel by reason, code location, device, network namespace and kernel stack, for \`duration\`. Reason names come from the running kernel's tracepoint format, locations and stacks are symbolised from \`/proc/kallsyms\`.

Use it when net.iface shows drops, or packets vanish without any counter moving: it tells *why* (\`NETFILTER_DROP\`, \`NO_SOCKET\`, \`QDISC_DROP\`, \`TCP_CSUM\`...) and *where*. Filters (device, namespace, IPv4 or IPv6 addresses, protocol, port) are applied in the kernel. Counts are exact; kernel stacks are sampled (per CPU the first ${STACK_FIRST} drops, then one in \`stack_every\`), since a stack walk is what makes a drop flood expensive. Attaches the BTF tracepoint (tp_btf: the skb's fields are plain loads, and so are the packet's headers the VM scope and address filters read, where the kernel's verifier allows it: 6.18 does), falling back to a raw tracepoint, then the classic one. A drop costs ~100 ns with stacks off, less than half of what bpftrace's count by reason and location costs on the same host, and ~150 ns with the default sampling (BENCHMARKS.md): a flood of one cause is counted per CPU in one cache line and moved to the shared table when the cause changes. Kernels before 5.17 give no reason: a kprobe on \`kfree_skb\` counts the drops, each named as later kernels name a drop at its place (\`nf_hook_slow\` → \`NETFILTER_DROP\`, \`tun_net_xmit\` → \`FULL_RING\`, a qdisc's → \`QDISC_DROP\`, a frame for another host's MAC freed by IP's receive → \`OTHERHOST\`), else \`NOT_SPECIFIED\`; the drops a helper frees for its caller (\`kfree_skb_list\`: a qdisc's) always get a stack there, since the caller is the place. There \`icmpv6_rcv\` frees every ND and MLD message it handled with \`kfree_skb\`, where later kernels consume them: those are not counted (a malformed one freed there is not told apart; the kernel counts it in \`Icmp6InErrors\`).

**One VM's drops.** With \`vm_macs\`, \`vm_ips\` or \`vm_devs\`, a drop counts only when it is the VM's packet: its device or input device is one of the VM's taps (in ebpfnet's namespace), or its Ethernet source or destination is one of the VM's MACs (when the skb has a MAC header), or its IPv4/IPv6 source or destination is one of the VM's addresses. \`scope\` says what was used and how many drops matched each way.

**Another VM's tap is not this VM's loss.** Scoped to a VM, its frames dropped at a tap that is not its own (a flooded broadcast, or what it sent a neighbour: at the neighbour's full ring, by a shaper or tc filter on the neighbour's tap) go to \`atOtherTaps\`: the neighbour's path is at fault, and asked about, says so. A tap is a device with \`tun_flags\` (on Open vSwitch's userspace datapath its internal ports are taps too); recordings older than this list only the \`tun\` reasons there.

**Host copies are not loss.** A broadcast, multicast or other-host frame dropped on its way *into* a device that is no bridge or OVS port (the frame's input device is the dropping device) is the host's own copy of a bridged frame: a Linux bridge's local copy (the drop is on the bridge device, e.g. IPv6 multicast the host never joined, \`ip6_mc_input\`), or a userspace switch's port (OVS netdev reads frames with AF_PACKET; the host stack then discards frames for other MACs, \`OTHERHOST\`). So is the OVS kernel datapath's copy of a broadcast or multicast frame for a port that is down (a hypervisor's integration bridge's own port usually is), freed on its way out (\`do_output\`: no carrier) or at the bridge's device (\`internal_dev_recv\`, older kernels); a unicast frame to a port that is down stays a drop. The switch forwarded the frame all the same, so these go to \`hostCopies\`, not \`total\`. Drops of the same frames while forwarded (a bridge netfilter rule, a bridge port's ingress rule, a qdisc or a full ring on the tap) stay in \`total\`, and so does the switch's own copy when its AF_PACKET socket was full (\`PACKET_SOCK_ERROR\`, \`packet_rcv\`): the switch never got that frame.

**Weight, not presence.** \`dominant\` is the reason with most of the drops and its share of \`total\`; \`byFamily\` and \`dominantFamily\` group reasons by name: ${FAMILY_PATTERNS.map(([f, re]) => `\`${f}\` (\`${re.source}\`)`).join(', ')}, \`other\` for the rest. Reasons of a subsystem (kernel 6.4+: the high 16 bits) are named from the kernel's BTF when the probe runs (\`enum skb_drop_reason_subsys\` in vmlinux, the subsystem's \`enum *_drop_reason\` in its module: \`OVS_DROP_LAST_ACTION\`), else \`OPENVSWITCH_<n>\`; \`bySubsystem\` counts them (\`core\` for the rest).`,
  normal: `A busy host drops a trickle of packets for benign reasons (\`NO_SOCKET\` for closed ports, \`NOT_SPECIFIED\` from some paths), and its stack discards its copies of bridged broadcast, multicast and other-host frames (\`hostCopies\`: \`OTHERHOST\`, \`ip6_mc_input\`...). Scoped to a healthy VM, \`total\` is 0. Drops in step with a VM's traffic, \`NETFILTER_DROP\` nobody expected, or any \`QDISC_*\`, \`*_CSUM\`, \`NEIGH_*\` reasons are not normal.`,
  replaces: ['packet-drop/kernel_drop_stack_stats_summary.py', 'packet-drop/kernel_drop_stack_stats.bt'],
  params: {
    duration: durationParam('How long to count drops.'),
    ...DROPS_FILTER_PARAMS,
    vm_macs: { type: 'string[]', default: [], description: `Count only the VM's drops: frames from or to these MACs (at most ${SCOPE_LIMITS.vm_macs}). With vm_ips and vm_devs, any match counts.` },
    vm_ips: { type: 'string[]', default: [], description: `Count only the VM's drops: packets from or to these IPv4/IPv6 addresses (at most ${SCOPE_LIMITS.vm_ips}).` },
    vm_devs: { type: 'string[]', default: [], description: `Count only the VM's drops: on or received by these devices of ebpfnet's namespace, the VM's taps (at most ${SCOPE_LIMITS.vm_devs}).` },
    host_copies: {
      type: 'string',
      enum: ['apart', 'count'],
      default: 'apart',
      description: "Where the host's own copies of bridged frames go (see above): `apart` in `hostCopies`, `count` in the totals like any drop.",
    },
    stacks: { type: 'boolean', default: true, description: 'Collect kernel stacks of the drops (sampled, see stack_every).' },
    stack_every: {
      type: 'integer',
      default: STACK_EVERY,
      min: 1,
      max: 1_000_000,
      description: `Per CPU, the first ${STACK_FIRST} drops get a kernel stack, then one in this many (1: every drop). A stack walk costs ~5 µs, fifty times the rest of the handler, so in a drop flood sampling keeps the probe cheap; the stack table's counts are of sampled drops.`,
    },
    top: DROPS_TOP_PARAM,
    ignore: {
      type: 'string[]',
      default: [],
      description: 'Drop reasons to count apart (`ignored`) rather than in the totals. (The `OTHERHOST` copies every port of a userspace AF_PACKET switch hands the host are host copies already, see `host_copies`.)',
    },
  },
  requirements: DROPS_REQUIREMENTS,
  ...nativeRun(DROPS_BUDGET),
  data: DATA,
  collect: async (params, io) => {
    await collectDrops(params, io);
  },
  parse,
};
