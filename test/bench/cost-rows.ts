// The rows of the cost benchmark (cost.ts): a probe with the params of the row, and bpftrace
// doing the same job as near as a one-liner can, its aggregation in the kernel too.
import { readFileSync } from 'node:fs';
import type { Params } from '../../engine/probe/types.js';
import { FLOOD_PORT, FLOOD_SRC_PORT, type FloodPair } from './udp-flood.js';

/** The flood's pair, its peer's MAC, and the two ends of an idle veth pair (a VM the flood is not for). */
export interface CostLab extends FloodPair {
  peerMac: string;
  idleTap: string;
  idlePort: string;
}

export interface CostRow {
  /** Names the row in the table (and on the command line). */
  label: string;
  probe: string;
  params?: (lab: CostLab) => Params;
  /** The probe follows the flood's own flow: the sender leaves from FLOOD_SRC_PORT. */
  followsFlood?: boolean;
  /** bpftrace doing the same job (or part of it, as the label says), each run beside the probe. */
  bpftrace?: Array<{ label: string; script: string | ((lab: CostLab) => string) }>;
}

/** The flood's destination MAC as bpftrace compares it: the first 4 bytes and the last 2, little-endian loads. */
function macWords(mac: string): { u32: string; u16: string } {
  const b = mac.split(':').map((x) => x.padStart(2, '0'));
  return { u32: `0x${[b[3], b[2], b[1], b[0]].join('')}`, u16: `0x${[b[5], b[4]].join('')}` };
}

const SKB = '((struct sk_buff *)args->skbaddr)';

/** The stages perf.host-latency times on the flood's path, each packet by its skb, as bpftrace would. */
const HOST_LATENCY_STAGES = [
  'tracepoint:net:net_dev_queue { @first[args->skbaddr] = nsecs; @last[args->skbaddr] = nsecs; }',
  'tracepoint:net:net_dev_start_xmit /@last[args->skbaddr]/ { $n = nsecs; @start_xmit = hist($n - @last[args->skbaddr]); @last[args->skbaddr] = $n; }',
  'tracepoint:net:net_dev_xmit /@last[args->skbaddr]/ { $n = nsecs; @driver = hist($n - @last[args->skbaddr]); @tx_total = hist($n - @first[args->skbaddr]); delete(@last[args->skbaddr]); delete(@first[args->skbaddr]); }',
  'tracepoint:net:netif_rx_entry, tracepoint:net:netif_receive_skb_entry, tracepoint:net:napi_gro_receive_entry { @rx[args->skbaddr] = nsecs; }',
  'tracepoint:net:netif_receive_skb /@rx[args->skbaddr]/ { @backlog = hist(nsecs - @rx[args->skbaddr]); }',
  'tracepoint:skb:kfree_skb /@rx[args->skbaddr]/ { @drops[args->reason] = count(); delete(@rx[args->skbaddr]); }',
].join(' ');

export const COST_ROWS: CostRow[] = [
  {
    label: 'drops.kernel, stacks off',
    probe: 'drops.kernel',
    params: () => ({ stacks: false }),
    bpftrace: [{ label: 'bpftrace: kfree_skb by reason, location', script: 'tracepoint:skb:kfree_skb { @[args->reason, args->location] = count(); }' }],
  },
  {
    label: 'drops.kernel (default: sampled stacks)',
    probe: 'drops.kernel',
    bpftrace: [
      {
        label: 'bpftrace: by reason, location, device, netns; a stack in 512',
        script: `tracepoint:skb:kfree_skb { $d = ${SKB}->dev; @[args->reason, args->location, $d->ifindex, $d->nd_net.net->ns.inum] = count(); @n[cpu] = @n[cpu] + 1; if (@n[cpu] % 512 == 1) { @s[kstack] = count(); } }`,
      },
    ],
  },
  {
    label: "drops.kernel scoped to the flood's MAC (matches)",
    probe: 'drops.kernel',
    params: (lab) => ({ stacks: false, vm_macs: [lab.peerMac] }),
    bpftrace: [
      {
        label: 'bpftrace: by reason, location, device, scoped by destination MAC',
        script: (lab) => {
          const m = macWords(lab.peerMac);
          return `tracepoint:skb:kfree_skb { $s = ${SKB}; $m = $s->head + $s->mac_header; if (*(uint32 *)$m == ${m.u32} && *(uint16 *)($m + 4) == ${m.u16}) { @[args->reason, args->location, $s->dev->ifindex] = count(); } }`;
        },
      },
    ],
  },
  {
    label: 'drops.kernel scoped to another VM (no match)',
    probe: 'drops.kernel',
    params: () => ({ stacks: false, vm_macs: ['02:00:5e:10:00:01'], vm_ips: ['192.0.2.10', '2001:db8::10'], vm_devs: ['lo'] }),
  },
  {
    label: 'perf.host-latency',
    probe: 'perf.host-latency',
    bpftrace: [
      {
        label: 'bpftrace: net_dev_queue → net_dev_start_xmit, one histogram (1 of its 12 stages)',
        script: 'tracepoint:net:net_dev_queue { @q[args->skbaddr] = nsecs; } tracepoint:net:net_dev_start_xmit /@q[args->skbaddr]/ { @qdisc_driver = hist((nsecs - @q[args->skbaddr]) / 1000); delete(@q[args->skbaddr]); }',
      },
      { label: "bpftrace: queue → start_xmit → xmit, rx entry → receive, drops: the stages on the flood's path", script: HOST_LATENCY_STAGES },
    ],
  },
  {
    label: 'perf.host-metrics',
    probe: 'perf.host-metrics',
    bpftrace: [
      {
        label: 'bpftrace: softirq time per CPU and vector, packets per CPU',
        script: 'tracepoint:irq:softirq_entry { @s[cpu] = nsecs; } tracepoint:irq:softirq_exit /@s[cpu]/ { @t[cpu, args->vec] = sum(nsecs - @s[cpu]); @h[args->vec] = hist((nsecs - @s[cpu]) / 1000); delete(@s[cpu]); } tracepoint:net:netif_receive_skb { @rx[cpu] = count(); } tracepoint:net:net_dev_xmit { @tx[cpu] = count(); }',
      },
    ],
  },
  {
    label: 'other.offload',
    probe: 'other.offload',
    bpftrace: [
      {
        label: 'bpftrace: GSO type counts, size/segs histograms, checksum state',
        script: 'tracepoint:net:net_dev_start_xmit { @n[str(args->name), args->gso_type] = count(); @size = hist(args->gso_size); @segs = hist(args->gso_segs); @csum[args->ip_summed] = count(); }',
      },
    ],
  },
  {
    label: 'other.vlan-udp',
    probe: 'other.vlan-udp',
    bpftrace: [
      {
        label: 'bpftrace: counts and bytes per device and VLAN',
        script: 'tracepoint:net:net_dev_start_xmit { @[str(args->name), args->vlan_tagged, args->vlan_tci & 0xfff] = count(); @b[str(args->name), args->vlan_tci & 0xfff] = sum(args->len); }',
      },
    ],
  },
  {
    label: 'other.dev-queue',
    probe: 'other.dev-queue',
    bpftrace: [
      {
        label: 'bpftrace: net_dev_queue + net_dev_xmit counts, bytes, histogram',
        script: 'tracepoint:net:net_dev_queue { @n[str(args->name)] = count(); @b[str(args->name)] = sum(args->len); @h = hist(args->len); } tracepoint:net:net_dev_xmit { @rc[str(args->name), args->rc] = count(); }',
      },
    ],
  },
  {
    label: 'other.udp-path (the flood is the followed flow)',
    probe: 'other.udp-path',
    params: (pair) => ({ src_ip: pair.hostIp, dst_ip: pair.peerIp, src_port: FLOOD_SRC_PORT, dst_port: FLOOD_PORT }),
    followsFlood: true,
  },
  { label: 'perf.icmp-rtt', probe: 'perf.icmp-rtt' },
  { label: 'other.arp', probe: 'other.arp' },
  {
    label: 'net.defrag (every kfree_skb, reason filtered in the kernel)',
    probe: 'net.defrag',
    bpftrace: [{ label: 'bpftrace: kfree_skb with the same reason filter', script: 'tracepoint:skb:kfree_skb /args->reason >= 94 && args->reason <= 96/ { @[args->reason] = count(); }' }],
  },
  {
    label: "vm.frames: the VM's frames (every packet counted)",
    probe: 'vm.frames',
    params: (lab) => ({ devs: [lab.hostDev], macs: [lab.peerMac], ports: [lab.idlePort] }),
  },
  {
    label: 'vm.frames: not the VM, ports given (ifindex check)',
    probe: 'vm.frames',
    params: (lab) => ({ devs: [lab.idleTap], macs: ['02:eb:ff:00:00:01'], ports: [lab.idlePort] }),
  },
  {
    label: 'vm.frames: not the VM, any port (MACs read)',
    probe: 'vm.frames',
    params: (lab) => ({ devs: [lab.idleTap], macs: ['02:eb:ff:00:00:01'] }),
  },
  {
    label: "other.offload filtered to the flood's flow (reads the headers)",
    probe: 'other.offload',
    params: (pair) => ({ protocol: 'udp', dst_ip: pair.peerIp, dst_port: FLOOD_PORT }),
  },
  {
    label: "other.vlan-udp filtered to the flood's flow",
    probe: 'other.vlan-udp',
    params: (pair) => ({ dst_ip: pair.peerIp, dst_port: FLOOD_PORT }),
  },
];



COST_ROWS.push({
  label: "perf.vm-latency (the flood's veth as the VM's tap)",
  probe: 'perf.vm-latency',
  params: (lab) => ({ dev: lab.hostDev }),
  bpftrace: [
    {
      label: "bpftrace: the tap's qdisc (queue → start_xmit) and tun ring (start_xmit → freed) histograms, drops",
      script: (lab) =>
        [
          `tracepoint:net:net_dev_queue /${SKB}->dev->ifindex == ${readFileSync(`/sys/class/net/${lab.hostDev}/ifindex`, 'utf8').trim()}/ { @q[args->skbaddr] = nsecs; }`,
          'tracepoint:net:net_dev_start_xmit /@q[args->skbaddr]/ { $n = nsecs; @qdisc = hist($n - @q[args->skbaddr]); delete(@q[args->skbaddr]); @tap[args->skbaddr] = $n; }',
          'tracepoint:skb:consume_skb /@tap[args->skbaddr]/ { @tun_ring = hist(nsecs - @tap[args->skbaddr]); delete(@tap[args->skbaddr]); }',
          'tracepoint:skb:kfree_skb /@tap[args->skbaddr]/ { @dropped = count(); delete(@tap[args->skbaddr]); }',
        ].join(' '),
    },
  ],
});
