// perf.host-metrics' declared data: per-CPU packets and softirq time, the imbalance and
// hot-softirq verdicts, and the interfaces' rates, drops and errors.
import Type, { type Static } from '#typebox';
import { bytes, events, nullable, packets } from '../lib/data/fields.js';
import { US_BUCKET } from '../lib/data/histogram.js';
import { IFACE_DEVICE, IFACE_DROPPING_FIELDS, IFACE_TOTALS } from '../lib/data/iface.js';
import { LOADED_FIELDS, OVERHEAD } from '../lib/data/session.js';

const SOFTIRQ_STATS_FIELDS = {
  count: events('Runs of the vector.'),
  totalMs: Type.Number({ description: 'Time spent in it.', unit: 'ms' }),
  maxUs: Type.Number({ description: 'Longest run.', unit: 'µs' }),
  meanUs: Type.Number({ description: 'Mean run.', unit: 'µs' }),
  p50Us: Type.Number({ description: 'Median run, at log2 bucket resolution, capped at max.', unit: 'µs' }),
  p99Us: Type.Number({ description: '99th percentile run, at log2 bucket resolution, capped at max.', unit: 'µs' }),
  share: Type.Number({ description: 'Its time’s share of the window (of one CPU; summed over CPUs, 1.0 is a whole CPU).', unit: 'share' }),
};
const SOFTIRQ_STATS = Type.Object(SOFTIRQ_STATS_FIELDS, { additionalProperties: false });

const HOST_CPU = Type.Object(
  {
    cpu: Type.Integer({ description: 'The CPU number.' }),
    rxPackets: packets('Packets this CPU received (netif_receive_skb).'),
    rxBytes: bytes('Their bytes.'),
    txPackets: packets('Packets this CPU handed to a driver (net_dev_xmit).'),
    txBytes: bytes('Their bytes.'),
    txFailed: packets('net_dev_xmit with a result other than NETDEV_TX_OK.'),
    netSoftirqShare: Type.Number({ description: 'NET_RX + NET_TX time’s share of the window.', unit: 'share' }),
    softirqs: Type.Record(Type.String(), SOFTIRQ_STATS, { description: 'Every softirq vector that ran on this CPU, by name (`NET_RX`, `TIMER`...).' }),
  },
  { additionalProperties: false },
);

const IMBALANCE = Type.Object(
  {
    metric: Type.Union([Type.Literal('rx packets'), Type.Literal('tx packets'), Type.Literal('NET_RX time'), Type.Literal('NET_TX time')], {
      description: 'What one CPU took most of.',
    }),
    cpu: Type.Integer({ description: 'The CPU taking it.' }),
    share: Type.Number({ description: 'This CPU’s share of the metric over all CPUs, 0..1.', unit: 'share' }),
    total: Type.Number({ description: 'The metric summed over CPUs (packets, or ms of softirq time).' }),
  },
  { additionalProperties: false },
);

export const DATA = Type.Object(
  {
    filter: Type.Object(
      {
        dev: nullable(Type.String(), { description: 'Only this device’s packets and counters; null: every device.' }),
        netns: nullable(Type.String(), { description: 'The device’s namespace; null: ebpfnet’s own, or any.' }),
        direction: Type.Union([Type.Literal('both'), Type.Literal('rx'), Type.Literal('tx')], { description: 'Which packets were counted.' }),
      },
      { additionalProperties: false, description: 'The filters (softirq time is never filtered: it is the CPU’s).' },
    ),
    ...LOADED_FIELDS,
    windowMs: Type.Number({ description: 'Time the programs were attached.', unit: 'ms' }),
    intervalMs: Type.Number({ description: 'Time between two reads of the interface counters.', unit: 'ms' }),
    onlineCpus: Type.Integer({ description: 'CPUs online (with one, there is no imbalance to find).' }),
    overhead: Type.Optional(OVERHEAD),
    packets: Type.Object(
      {
        rx: packets('Packets received.'),
        tx: packets('Packets handed to drivers.'),
        rxBytes: bytes('Bytes received.'),
        txBytes: bytes('Bytes handed to drivers.'),
        txFailed: packets('net_dev_xmit results other than NETDEV_TX_OK.'),
      },
      { additionalProperties: false, description: 'Packets the programs counted (after the filters), over every CPU.' },
    ),
    cpus: Type.Array(HOST_CPU, { description: 'CPUs that counted packets or ran softirqs, by number.' }),
    softirqs: Type.Record(
      Type.String(),
      Type.Object({ ...SOFTIRQ_STATS_FIELDS, buckets: Type.Array(US_BUCKET, { description: 'Non-empty log2 buckets of run times.' }) }, { additionalProperties: false }),
      { description: 'Per softirq vector (`NET_RX`, `NET_TX`, `TIMER`...) over every CPU.' },
    ),
    imbalance: Type.Array(IMBALANCE, { description: 'Per metric, the CPU taking at least `imbalance_pct` of it (with several CPUs and enough packets).' }),
    imbalanced: Type.Boolean({ description: 'One CPU takes most of a metric (a warning).' }),
    softirqHot: Type.Array(
      Type.Object(
        {
          cpu: Type.Integer({ description: 'The CPU.' }),
          share: Type.Number({ description: 'Its NET_RX + NET_TX time’s share of the window.', unit: 'share' }),
        },
        { additionalProperties: false },
      ),
      { description: 'CPUs spending at least `softirq_pct` of the window in network softirqs (a warning).' },
    ),
    interfaces: Type.Array(IFACE_DEVICE, { description: 'Interfaces whose counters were sampled.' }),
    interfaceTotals: IFACE_TOTALS,
    ...IFACE_DROPPING_FIELDS,
    samples: Type.Integer({ description: 'Times the interface counters were read.' }),
    notes: Type.Array(Type.String(), { description: 'What limits the finding: counters not read, untimed softirq runs, one CPU, an early stop.' }),
  },
  { additionalProperties: false },
);

export type HostMetricsData = Static<typeof DATA>;
export type SoftirqStats = Static<typeof SOFTIRQ_STATS>;
export type HostCpu = Static<typeof HOST_CPU>;
export type Imbalance = Static<typeof IMBALANCE>;
