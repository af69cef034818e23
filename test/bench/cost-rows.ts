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
        script: `tracepoint:skb:kfree_skb { $d = ${SKB}->dev; @[args->reason, args->location, $d->ifindex, $d->nd_net.net->ns.inum] = count(); @n[cpu] = @n[cpu] + 1; if (@n[cpu] % 1024 == 1) { @s[kstack] = count(); } }`,
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
    bpftrace: [{ label: 'bpftrace: the flow followed by skb over queue, xmit, receive, drop; hop counts, hop-to-hop histograms', script: udpPathScript }],
  },
  {
    label: 'perf.icmp-rtt',
    probe: 'perf.icmp-rtt',
    bpftrace: [
      {
        label: 'bpftrace: echo requests stamped at xmit/receive, replies timed into a histogram per peer',
        script: [
          icmpEchoHook('net_dev_start_xmit', `${SKB}->head + ${SKB}->network_header`, '$ip->saddr, $ip->daddr'),
          icmpEchoHook('netif_receive_skb', `${SKB}->data`, '$ip->daddr, $ip->saddr'),
        ].join(' '),
      },
    ],
  },
  {
    label: 'other.arp',
    probe: 'other.arp',
    bpftrace: [
      {
        label: 'bpftrace: ARP received by device, sender IP, sender MAC, op; requests sent by asked IP',
        script:
          `tracepoint:net:netif_receive_skb { $s = ${SKB}; if ($s->protocol == 0x0608) { $a = $s->data; ` +
          `@[$s->dev->ifindex, *(uint32 *)($a + 14), *(uint32 *)($a + 8), *(uint16 *)($a + 12), *(uint16 *)($a + 6)] = count(); } } ` +
          `tracepoint:net:net_dev_start_xmit { $d = ${SKB}->data; if (*(uint16 *)($d + 12) == 0x0608 && *(uint16 *)($d + 20) == 0x0100) { @asked[*(uint32 *)($d + 38)] = nsecs; } }`,
      },
    ],
  },
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

/** An IPv4 address as bpftrace compares a 4-byte load of it (little-endian). */
function ipWord(ip: string): string {
  return `0x${ip.split('.').reverse().map((b) => Number(b).toString(16).padStart(2, '0')).join('')}`;
}

/** A port pair (source, destination) as a 4-byte little-endian load of the UDP header's first word. */
function portsWord(src: number, dst: number): string {
  const swap = (p: number) => ((p & 0xff) << 8) | (p >> 8);
  return `0x${((swap(dst) << 16) | swap(src)).toString(16).padStart(8, '0')}`;
}

/** ICMP echo at one hook: requests stamped by (addresses, id, seq), replies timed per peer. */
function icmpEchoHook(tp: string, l3: string, addrs: string): string {
  return (
    `tracepoint:net:${tp} { if (${SKB}->protocol == 0x0008) { $ip = (struct iphdr *)(${l3}); if ($ip->protocol == 1) { ` +
    `$t = *(uint8 *)((uint8 *)$ip + 20); $e = *(uint32 *)((uint8 *)$ip + 24); ` +
    `if ($t == 8) { @req[${addrs}, $e] = nsecs; } if ($t == 0 && @req[$ip->daddr, $ip->saddr, $e]) { ` +
    `@rtt[$ip->saddr, $ip->daddr] = hist((nsecs - @req[$ip->daddr, $ip->saddr, $e]) / 1000); delete(@req[$ip->daddr, $ip->saddr, $e]); } } } }`
  );
}

/** The flood's flow (host → peer, FLOOD_SRC_PORT → FLOOD_PORT) followed hook to hook by skb address. */
function udpPathScript(pair: CostLab): string {
  const hooks: Array<[string, string, number]> = [
    ['net:net_dev_queue', `$s->head + $s->network_header`, 0],
    ['net:net_dev_start_xmit', `$s->head + $s->network_header`, 2],
    ['net:netif_receive_skb', `$s->data`, 3],
    ['skb:kfree_skb', `$s->head + $s->network_header`, 6],
  ];
  return hooks
    .map(([tp, l3, hook]) => {
      const end = hook === 6 ? ' delete(@t[$k]); delete(@h[$k]);' : ` @t[$k] = nsecs; @h[$k] = ${hook};`;
      return (
        `tracepoint:${tp} { $s = ${SKB}; if ($s->protocol == 0x0008) { $ip = (struct iphdr *)(${l3}); ` +
        `if ($ip->saddr == ${ipWord(pair.hostIp)} && $ip->daddr == ${ipWord(pair.peerIp)} && $ip->protocol == 17 && *(uint32 *)((uint8 *)$ip + $ip->ihl * 4) == ${portsWord(FLOOD_SRC_PORT, FLOOD_PORT)}) { ` +
        `$k = args->skbaddr; $d = $s->dev; @hops[${hook}, $d->ifindex, $d->nd_net.net->ns.inum] = count(); ` +
        `if (@t[$k]) { @pairs[@h[$k], ${hook}, $d->ifindex] = hist(nsecs - @t[$k]); }${end} } } }`
      );
    })
    .join(' ');
}
