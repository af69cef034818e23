// other.qdisc-dequeue's declared data: every qdisc's dequeue calls, the packets they took, the
// queue left behind them, and requeues, per qdisc and per device.
import Type, { type Static } from '#typebox';
import { bytes, DEVICE_LABEL, events, NETDEV_FIELDS, packets } from '../lib/data/fields.js';
import { NETDEV_SESSION_FIELDS } from '../lib/data/session.js';

const BUCKET = Type.Object(
  {
    low: packets('Inclusive lower bound.'),
    high: packets('Inclusive upper bound.'),
    calls: events('Dequeue calls that took this many packets.'),
  },
  { additionalProperties: false },
);

const QDISC = Type.Object(
  {
    ...NETDEV_FIELDS,
    kind: Type.String({ description: 'The qdisc’s kind (`tbf`, `fq_codel`, `pfifo_fast`...).' }),
    handle: Type.String({ description: 'Its handle in tc’s notation (`9:`; `none` for a kernel default qdisc).' }),
    parent: Type.String({ description: 'Its parent in tc’s notation (`root` for a device’s root qdisc, `1:10`).' }),
    calls: events('Dequeue calls.'),
    packets: packets('Packets dequeued.'),
    empty: events('Calls that dequeued nothing: the queue was empty, or a shaper held its packets back.'),
    packetsPerCall: Type.Number({ description: 'Packets per call that dequeued something (above 1: bulk dequeues).', unit: 'packets' }),
    p99PacketsPerCall: packets('99th percentile of packets per non-empty call, at log2 bucket resolution.'),
    qlenMean: Type.Number({ description: 'Mean packets still queued right after a dequeue.', unit: 'packets' }),
    qlenMax: packets('Most packets still queued right after a dequeue (0 for lockless qdiscs, which count per CPU).'),
    backlogMeanBytes: bytes('Mean bytes still queued right after a dequeue.'),
    backlogMaxBytes: bytes('Most bytes still queued right after a dequeue.'),
    requeues: packets('Rise of the qdisc’s requeue counter: the driver handed packets back (NETDEV_TX_BUSY).'),
    gsoAnomalies: packets('Dequeued packets with a GSO size but no GSO type (critical).'),
    buckets: Type.Array(BUCKET, { description: 'Non-empty log2 buckets of packets per call (low 0: empty calls).' }),
  },
  { additionalProperties: false },
);

const DEVICE_TOTALS = Type.Object(
  {
    device: DEVICE_LABEL,
    calls: events('Dequeue calls over the device’s qdiscs.'),
    packets: packets('Packets dequeued over the device’s qdiscs.'),
    empty: events('Calls that dequeued nothing.'),
    qlenMax: packets('Most packets queued behind a dequeue on any of its qdiscs.'),
    backlogMaxBytes: bytes('Most bytes queued behind a dequeue on any of its qdiscs.'),
    requeues: packets('Requeues over its qdiscs (NETDEV_TX_BUSY).'),
    gsoAnomalies: packets('Packets with a GSO size but no GSO type.'),
  },
  { additionalProperties: false },
);

export const DATA = Type.Object(
  {
    ...NETDEV_SESSION_FIELDS,
    calls: events('Dequeue calls seen (also those not kept per qdisc).'),
    packets: packets('Packets dequeued over every qdisc.'),
    empty: events('Calls that dequeued nothing, over every qdisc.'),
    requeues: packets('Requeues over every qdisc (the driver pushed back: NETDEV_TX_BUSY).'),
    gsoAnomalies: packets('Packets with a GSO size but no GSO type, over every qdisc (critical).'),
    qlenMax: packets('Most packets queued behind a dequeue on any qdisc (a warning when above 0).'),
    devices: Type.Array(DEVICE_TOTALS, { description: 'Devices, busiest first (the first `top`).' }),
    qdiscs: Type.Array(QDISC, { description: 'Qdiscs, busiest first (the first `top`).' }),
    lost: events('Dequeue calls counted but not kept per qdisc (the map was full).'),
    notes: Type.Array(Type.String(), { description: 'What limits the finding: an early stop, a fallback, a full map, lockless qdiscs.' }),
  },
  { additionalProperties: false },
);

export type QdiscDequeueData = Static<typeof DATA>;
export type DequeueQdisc = Static<typeof QDISC>;
export type DequeueDevice = Static<typeof DEVICE_TOTALS>;
export type DequeueBucket = Static<typeof BUCKET>;
