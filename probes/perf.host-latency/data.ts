// perf.host-latency's declared data: time spent in each stage of this host's stack, per
// direction (TX: net_dev_queue → the driver; RX: the driver's hand-off → the socket), the packets
// each direction started, completed, dropped or lost track of, and the slowest stage.
import Type, { type Static, type TProperties } from '#typebox';
import { DEVICE_FILTER_FIELDS, events, nullable, packets } from '../lib/data/fields.js';
import { LAYER_STATS_FIELDS } from '../lib/data/histogram.js';
import { LOADED_FIELDS, OVERHEAD } from '../lib/data/session.js';

const DIRECTION = Type.Union([Type.Literal('tx'), Type.Literal('rx')], { description: 'tx: sent by this host; rx: received.' });
const STAGE_ID = Type.Union(
  [
    Type.Literal('queue'),
    Type.Literal('enqueue'),
    Type.Literal('qdisc'),
    Type.Literal('start_xmit'),
    Type.Literal('driver'),
    Type.Literal('rx_entry'),
    Type.Literal('backlog'),
    Type.Literal('socket'),
  ],
  { description: 'The stage (as `stages` names them).' },
);

const STAGE_STATS = Type.Object(
  {
    direction: DIRECTION,
    stage: STAGE_ID,
    tracepoint: Type.String({ description: 'The tracepoint that stamps the stage.' }),
    packets: packets('Packets that reached the stage (at a path’s first stage: counted, not timed).'),
    ...LAYER_STATS_FIELDS,
  },
  { additionalProperties: false },
);

const stage = (description: string) => Type.Optional(Type.Object(STAGE_STATS.properties, { additionalProperties: false, description }));
/** `tx` and `rx`, each present when that direction was watched. */
const perDirection = <T extends TProperties>(properties: T, what: string) => ({
  tx: Type.Optional(Type.Object(properties, { additionalProperties: false, description: `TX: ${what}` })),
  rx: Type.Optional(Type.Object(properties, { additionalProperties: false, description: `RX: ${what}` })),
});

const DIRECTION_PACKETS_FIELDS = {
  started: packets('Stamped at the path’s first stage seen.'),
  completed: packets('Reached the end: net_dev_xmit (TX), the socket (RX).'),
  dropped: packets('Freed by kfree_skb on the way (by reason in `drops`).'),
  ended: packets('TX: net_dev_xmit returned an error. RX: consumed by the kernel before any socket (ICMP echo...).'),
  inFlight: packets('Still tracked at the end of the window (in a queue, or its end not seen).'),
  evicted: packets('Neither completed, ended nor left: evicted from the table or reused before its end.'),
  slow: packets('Completed with a total of at least `latency_us` (0 when it is not set).'),
};

export const DATA = Type.Object(
  {
    ...DEVICE_FILTER_FIELDS,
    filters: Type.Object(
      {
        srcIp: nullable(Type.String(), { description: 'Only packets from this IPv4 address; null: any.' }),
        dstIp: nullable(Type.String(), { description: 'Only packets to this IPv4 address; null: any.' }),
        srcPort: Type.Integer({ description: 'Only packets from this port; 0: any.' }),
        dstPort: Type.Integer({ description: 'Only packets to this port; 0: any.' }),
        protocol: Type.String({ description: 'Only this IP protocol (`any`, `icmp`, `tcp`, `udp`).' }),
        direction: Type.Union([Type.Literal('both'), Type.Literal('tx'), Type.Literal('rx')], { description: 'The directions watched.' }),
        latencyUs: Type.Number({ description: 'Completed packets taking at least this long end to end are counted as `slow`; 0: not counted.', unit: 'µs' }),
      },
      { additionalProperties: false, description: 'What the programs filtered on.' },
    ),
    ...LOADED_FIELDS,
    attachMs: Type.Number({ description: 'Sum of the programs’ attach times.', unit: 'ms' }),
    windowMs: Type.Number({ description: 'Time the programs were attached.', unit: 'ms' }),
    overhead: Type.Optional(OVERHEAD),
    stages: Type.Object(
      {
        queue: stage('TX: handed to the device (net_dev_queue; the path’s start: counted, not timed).'),
        enqueue: stage('TX: net_dev_queue → qdisc_enqueue (tc egress, classification).'),
        qdisc: stage('TX: qdisc_enqueue → qdisc_dequeue: the wait in the qdisc.'),
        start_xmit: stage('TX: previous stamp → net_dev_start_xmit (to the driver).'),
        driver: stage('TX: net_dev_start_xmit → net_dev_xmit: the driver took it.'),
        rx_entry: stage('RX: the driver hands it to the stack (the path’s start: counted, not timed).'),
        backlog: stage('RX: rx entry → netif_receive_skb (GRO, the backlog queue, RPS).'),
        socket: stage('RX: netif_receive_skb → the socket has it (IP, netfilter, TCP/UDP).'),
      },
      { additionalProperties: false, description: 'Every stage of the directions watched, in path order (µs since the previous stamp).' },
    ),
    totals: Type.Object(perDirection(LAYER_STATS_FIELDS, 'first stamp → end (µs).'), { additionalProperties: false, description: 'First stamp → end, per direction (µs).' }),
    packets: Type.Object(perDirection(DIRECTION_PACKETS_FIELDS, 'what became of the packets.'), { additionalProperties: false, description: 'What became of the packets, per direction.' }),
    drops: Type.Array(
      Type.Object(
        {
          direction: DIRECTION,
          stage: STAGE_ID,
          reason: Type.String({ description: 'The kernel’s drop reason (without `SKB_DROP_REASON_`).' }),
          count: packets('Tracked packets dropped after this stage for this reason.'),
        },
        { additionalProperties: false },
      ),
      { description: 'Drops of tracked packets by reason and the stage they had reached, most first.' },
    ),
    lostEvents: events('Events lost on the way to user space: always 0, as nothing is streamed (see `packets.*.evicted`).'),
    slowest: nullable(
      Type.Object(
        {
          direction: DIRECTION,
          stage: STAGE_ID,
          p99: Type.Number({ description: 'Its 99th percentile time.', unit: 'µs' }),
          share: Type.Number({ description: 'Its mean time’s share of the direction’s mean total, 0..1.', unit: 'share' }),
        },
        { additionalProperties: false },
      ),
      { description: 'The stage that adds the most delay (highest P99 of a timed stage); null with no timed packet.' },
    ),
    notes: Type.Array(Type.String(), { description: 'What limits the finding: drops, evicted or in-flight packets, no qdisc stage, an early stop.' }),
  },
  { additionalProperties: false },
);

export type HostLatencyData = Static<typeof DATA>;
