// other.udp-path: one UDP flow followed hook to hook across devices and network namespaces,
// like pwru or Retis for one flow: the path as an ordered list of hops with packet counts, the
// time between consecutive hops (in-kernel log2 histograms), where packets stop (drops by hook,
// device and reason; packets that vanish between two hops), and a bounded sample of packets'
// journeys from the ring buffer. Native driver (probes/other.udp-path/other.udp-path.bpf.c); capture records replay.
import type { OverheadBudget } from '../../engine/probe/budget.js';
import type { ProbeDefinition, RawRecord } from '../../engine/probe/types.js';
import { addressParams, durationParam } from '../lib/params.js';
import { HOOKS, RECENT_MAX_ENTRIES } from './attach.js';
import { collect } from './collect.js';
import { DATA } from './data.js';
import { udpPathFinding, type UdpPathData } from './findings.js';
import { nativeRun } from '../lib/bpf-probe.js';

/**
 * What a session may cost: 5% of one CPU, 1M program runs/s. Eight tracepoints fire on every
 * packet the host moves (kfree_skb and consume_skb on every freed skb, the socket ones on every
 * UDP datagram queued or read); each checks the IPv4 header and the ports first and stops there
 * for other traffic (a few tens of ns). Past the budget the session stops early and keeps what
 * it counted.
 */
export const UDP_PATH_BUDGET: OverheadBudget = { cpu: 0.05, eventsPerSec: 1_000_000 };

export const otherUdpPath: ProbeDefinition<UdpPathData> = {
  id: 'other.udp-path',
  title: 'One UDP flow followed hop by hop across devices and namespaces',
  description: `Follows the packets of one UDP flow (IPv4; \`src_ip\`, \`dst_ip\`, \`src_port\`, \`dst_port\`, all four required) through the kernel for \`duration\`, on every device and in every network namespace of the host, and reports its **path**: the hops in the order packets passed them, each a hook on a device (or socket) of a namespace, with the packets counted at each, and the time between consecutive hops of one packet (count, mean, max and a log2 histogram per hop pair, aggregated in the kernel). The hooks: \`net:net_dev_queue\` (handed to a device), \`qdisc:qdisc_dequeue\` (left a qdisc, where there is one), \`net:net_dev_start_xmit\` (given to the driver), \`net:netif_receive_skb\` (received on a device), \`sock:sk_data_ready\` (queued on the receiving UDP socket), \`sock:sock_recv_length\` (read by the application: datagrams are paired with reads in queue order), \`skb:kfree_skb\` (dropped, with its reason) and \`skb:consume_skb\` (freed on the way). A packet is followed by its skb, which stays the same across veth pairs, Linux bridges and the local stack, so a flow from a sender namespace through a bridge to a receiver namespace shows as: the sender's queue and xmit, the bridge port's receive, the other port's queue and xmit, the receiver's receive, the socket's queue and the application's read. A kernel without the socket's tracepoints (\`sock:sk_data_ready\` came in 6.3; Debian 12's 6.1 lacks it) has no socket hops: a datagram the application read ends at the \`consume_skb\` of its read (freed off any device), one never read at the receiver's \`netif_receive_skb\`, and a note says so.

Where packets stop: drops by hop (device, namespace), drop reason (from the kernel's \`enum skb_drop_reason\`) and kernel location, with the hop passed last before them; packets that passed a hop and were never seen again are **lost between** that hop and the next (on the socket: queued but not read). Findings (\`data.findings\`, \`data.verdict\`): \`delivered\`, \`dropped at <hop> (<reason>)\`, \`lost between <hop> and <hop>\`, and the slowest hop pair. The first \`samples\` packets also stream every hop to a ring buffer, so the report shows their journeys with the time since their first hop (events the ring could not hold are counted in \`lostEvents\`). With \`both\`, the flow's answers (dst → src, ports swapped) are followed too, as the reverse way.

Tracepoints only (tp_btf, whose skb fields are plain loads, else raw_tp with a cached minimal BTF, else the classic tracepoints). Each CPU counts the flow's hot hop pairs and its last drop in its own entries, added up when the probe reads them. \`skb:skb_copy_datagram_iovec\` is not a hop: UDP copies a linear datagram to the reader without it. \`net:net_dev_xmit\` is not one either: after the driver returns, the skb may already belong to the receiver. Replaces the seed's \`other/vpc-vm-udp-datapath.bt\` (PROBES.md row 51), which printed every call of kprobes on the Geneve/GSO transmit path: \`iptunnel_handle_offloads\`, \`udp_tunnel_xmit_skb\`, \`__udp_gso_segment\`, \`__skb_gso_segment\`, \`skb_segment\`, \`mlx5e_xmit\`, \`validate_xmit_skb\`, \`netif_skb_features\` (GSO type/size/segments, feature masks, header offsets). Those kprobes cannot attach on a kernel without kprobes (as this project's machines) and are not part of this probe; the tunnel and physical devices' own queue/xmit/receive hops do show, for the inner flow until it is encapsulated. A segmented, copied or cloned skb is a new packet from the hop where it appears; a packet not seen for \`timeout\` is taken for a new one when its skb comes back.`,
  normal: `Every packet of a healthy flow passes every hop (the counts are equal along the path) and ends read by the application in the receiver's namespace (\`sock_recv_length\`); the verdict is \`delivered\`. Between two namespaces of one host, hop to hop takes from a few µs (queue → xmit on a veth) to tens of µs (xmit → the receiver's softirq); socket queue → read depends on the application (µs to ms). Any drop or loss is a warning, half the packets or more critical.`,
  memory: {
    resized: { ...RECENT_MAX_ENTRIES },
    user: 'one copy of each map when it reads it, and the hops of the sampled packets streamed from the ring buffer: at most `samples` packets (≤ 1,000, a few more when CPUs race), each a hop per device and stage it passes (tens), kept as one small object each.',
  },
  replaces: ['other/vpc-vm-udp-datapath.bt'],
  params: {
    ...addressParams({ src: "The flow's source address (IPv4).", dst: "The flow's destination address (IPv4)." }, { required: true }),
    src_port: { type: 'integer', required: true, min: 1, max: 65535, description: "The flow's UDP source port." },
    dst_port: { type: 'integer', required: true, min: 1, max: 65535, description: "The flow's UDP destination port." },
    both: { type: 'boolean', default: false, description: 'Follow the answers too (dst → src, ports swapped), as the reverse way.' },
    duration: durationParam('How long to follow the flow.', { max: 3_600_000 }),
    samples: { type: 'integer', default: 8, min: 0, max: 1000, description: 'Packets whose every hop is streamed to the ring buffer and shown as a journey.' },
    timeout: { type: 'duration', default: '1s', min: 1, max: 600_000, description: 'A packet not seen for this long is a new one when its skb comes back.' },
  },
  requirements: [
    { kind: 'root' },
    { kind: 'kernel', feature: 'btf' },
    { kind: 'kernel', feature: 'ringbuf' },
    // names the devices of the hops
    { kind: 'binary', name: 'ip', package: 'iproute2' },
    // the socket's two are optional: without them the path ends at the receiver's netif_receive_skb
    ...HOOKS.filter((h) => h.direction !== 'socket').map((h) => ({ kind: 'tracepoint' as const, name: `${h.category}:${h.tracepoint}` })),
  ],
  ...nativeRun(UDP_PATH_BUDGET),
  data: DATA,
  collect,
  parse: (records: RawRecord[]) => udpPathFinding(records),
};
