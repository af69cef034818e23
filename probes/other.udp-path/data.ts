// other.udp-path's declared data: one UDP flow's path through the host (hops in order, per way),
// the time between consecutive hops, where its packets were dropped or vanished, and a verdict.
import Type, { type Static } from '#typebox';
import { bytes, events, nullable, packets } from '../lib/data/fields.js';
import { US_BUCKET } from '../lib/data/histogram.js';
import { LOADED_FIELDS, OVERHEAD } from '../lib/data/session.js';

const WAY = Type.Union([Type.Literal('forward'), Type.Literal('reverse')], { description: 'forward: from the source to the destination; reverse: the replies.' });
const HOP_LABEL = (description: string) => Type.String({ description: `${description} (\`hook device@netns\`).` });
const perWay = (description: string) =>
  Type.Object({ forward: packets(`${description}, forward.`), reverse: packets(`${description}, reverse.`) }, { additionalProperties: false, description: `${description}, per way.` });

const HOP = Type.Object(
  {
    index: Type.Integer({ description: 'Position in `hops` (the path order).' }),
    way: WAY,
    hook: Type.String({
      description: 'The tracepoint: net_dev_queue, qdisc_dequeue, net_dev_start_xmit, netif_receive_skb, sk_data_ready (queued on the socket), sock_recv_length (read by the application), kfree_skb, consume_skb.',
    }),
    direction: Type.String({ description: 'tx, rx, socket (queued on or read from the receiving socket), free (dropped or consumed).' }),
    device: Type.String({ description: 'The device (`-` for socket and free hooks).' }),
    ifindex: Type.Integer({ description: 'Its ifindex (0 for socket and free hooks).' }),
    netns: Type.String({ description: 'Its namespace: the `ip netns` name, else `netns:<inode>` (`-` when none).' }),
    packets: packets('Packets of the flow seen at this hop.'),
    label: HOP_LABEL('The hop'),
  },
  { additionalProperties: false },
);

const PAIR = Type.Object(
  {
    from: Type.Integer({ description: 'Index in `hops` of the earlier hop.' }),
    to: Type.Integer({ description: 'Index in `hops` of the later hop.' }),
    fromLabel: HOP_LABEL('The earlier hop'),
    toLabel: HOP_LABEL('The later hop'),
    way: WAY,
    count: packets('Packets that went from one hop straight to the other.'),
    meanUs: Type.Number({ description: 'Mean time between the two hops (exact).', unit: 'µs' }),
    maxUs: Type.Number({ description: 'Longest time between the two hops (exact).', unit: 'µs' }),
    p50Us: Type.Number({ description: 'Median time, at log2 bucket resolution, capped at the max.', unit: 'µs' }),
    p99Us: Type.Number({ description: '99th percentile time, at log2 bucket resolution, capped at the max.', unit: 'µs' }),
    buckets: Type.Array(US_BUCKET, { description: 'Non-empty log2 buckets of the time between the hops.' }),
  },
  { additionalProperties: false },
);

const DROP = Type.Object(
  {
    way: WAY,
    hop: Type.Integer({ description: 'Index in `hops` of the kfree_skb hop.' }),
    device: Type.String({ description: 'The device the packet was on when freed (`-` when none).' }),
    netns: Type.String({ description: 'Its namespace (`ip netns` name, else `netns:<inode>`).' }),
    reason: Type.String({ description: 'The kernel’s drop reason (`SKB_DROP_REASON_*` without the prefix).' }),
    location: Type.String({ description: 'Where the kernel freed it (function symbol).' }),
    count: packets('Packets dropped here for this reason.'),
    after: nullable(Type.String(), { description: 'The hop most dropped packets passed last before the drop; null when unknown.' }),
  },
  { additionalProperties: false },
);

const LOSS = Type.Object(
  {
    way: WAY,
    after: HOP_LABEL('The hop the packets passed last'),
    before: nullable(Type.String(), { description: 'The hop after it on the path, which they never reached; null when none.' }),
    count: packets('Packets that vanished between the two hops without a drop seen.'),
  },
  { additionalProperties: false },
);

const SAMPLE = Type.Object(
  {
    packet: Type.Integer({ description: 'The sampled packet’s number (1, 2...).' }),
    way: WAY,
    hops: Type.Array(
      Type.Object(
        {
          hop: HOP_LABEL('The hop'),
          atUs: Type.Number({ description: 'Time since the packet’s first hop.', unit: 'µs' }),
          len: bytes('skb->len at the hop.'),
          reason: Type.Optional(Type.String({ description: 'The drop reason, at a kfree_skb hop.' })),
        },
        { additionalProperties: false },
      ),
      { description: 'Its hops in order.' },
    ),
  },
  { additionalProperties: false },
);

export const DATA = Type.Object(
  {
    flow: Type.Object(
      {
        srcIp: Type.String({ description: 'The flow’s source address.' }),
        dstIp: Type.String({ description: 'Its destination address.' }),
        srcPort: Type.Integer({ description: 'Its source port.' }),
        dstPort: Type.Integer({ description: 'Its destination port.' }),
        both: Type.Boolean({ description: 'The replies (reverse way) were followed too.' }),
      },
      { additionalProperties: false, description: 'The UDP flow followed.' },
    ),
    ...LOADED_FIELDS,
    windowMs: Type.Number({ description: 'Time the programs were attached.', unit: 'ms' }),
    overhead: Type.Optional(OVERHEAD),
    hops: Type.Array(HOP, { description: 'The path in order: forward hops, then reverse ones.' }),
    pairs: Type.Array(PAIR, { description: 'Consecutive hops of one packet, in path order, with the time between them.' }),
    drops: Type.Array(DROP, { description: 'Drops of the flow’s packets by place and reason, most first.' }),
    lost: Type.Array(LOSS, { description: 'Packets that passed a hop and no other after it, without a drop seen.' }),
    packets: perWay('Packets of the flow seen at their first hop'),
    delivered: perWay('Packets read from the receiving socket by the application (before 6.3: freed by the read, consume_skb off any device)'),
    dropped: packets('Packets dropped (kfree_skb), both ways.'),
    lostCount: packets('Packets that vanished between two hops, both ways.'),
    verdict: Type.Union([Type.Literal('delivered'), Type.Literal('dropped'), Type.Literal('lost'), Type.Literal('not_seen')], {
      description: 'delivered: every packet seen reached a reader; dropped or lost: some did not; not_seen: no packet of the flow.',
    }),
    findings: Type.Array(Type.String(), { description: '`delivered`, `dropped at <hop> (<reason>)`, `lost between <hop> and <hop>`, `slowest <hop> → <hop>`.' }),
    notes: Type.Array(Type.String(), { description: 'What limits the finding on this kernel (no socket hops before 6.3).' }),
    slowest: nullable(
      Type.Object(
        {
          from: HOP_LABEL('The earlier hop'),
          to: HOP_LABEL('The later hop'),
          meanUs: Type.Number({ description: 'Mean time between them.', unit: 'µs' }),
          maxUs: Type.Number({ description: 'Longest time between them.', unit: 'µs' }),
        },
        { additionalProperties: false },
      ),
      { description: 'The hop pair with the highest mean time; null with no pair.' },
    ),
    samples: Type.Array(SAMPLE, { description: 'Sampled packets’ journeys, hop by hop.' }),
    lostEvents: events('Sample events the ring buffer had no room for.'),
    skipped: Type.Object(
      {
        noEntry: packets('Not counted: a map was full.'),
        short: packets('Not counted: the UDP header was outside the skb’s linear area.'),
        queueFull: packets('Datagrams queued on a socket already holding 64 unread: their reads are not paired.'),
      },
      { additionalProperties: false, description: 'Packets not counted, by why.' },
    ),
  },
  { additionalProperties: false },
);

export type UdpPathData = Static<typeof DATA>;
export type UdpPathHop = Static<typeof HOP>;
export type UdpPathPair = Static<typeof PAIR>;
export type UdpPathDrop = Static<typeof DROP>;
export type UdpPathLoss = Static<typeof LOSS>;
export type UdpPathSample = Static<typeof SAMPLE>;
