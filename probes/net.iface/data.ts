// net.iface's finding data: per-device counter deltas and rates, per-queue counters, and
// what dropped.
import Type, { type Static } from '#typebox';
import { IFACE_DEVICE, IFACE_DROPPING_FIELDS, IFACE_TOTALS } from '../lib/data/iface.js';

const DIRECTION = Type.Union([Type.Literal('rx'), Type.Literal('tx')], { description: 'The queue\'s direction.' });

const QUEUE = Type.Object(
  {
    direction: DIRECTION,
    queue: Type.Integer({ description: 'The queue\'s index (rx-N, tx-N).' }),
    packets: Type.Union([Type.Integer({ unit: 'packets' }), Type.Null()], { description: 'Packets the queue counted (ethtool -S delta); null when the driver has no such counter.' }),
    bytes: Type.Union([Type.Integer({ unit: 'bytes' }), Type.Null()], { description: 'Bytes the queue counted (ethtool -S delta); null when the driver has no such counter.' }),
    drops: Type.Union([Type.Integer({ unit: 'packets' }), Type.Null()], { description: 'Sum of the queue\'s counters named *drop*; null when it has none.' }),
    errors: Type.Union([Type.Integer({ unit: 'packets' }), Type.Null()], { description: 'Sum of the queue\'s counters named *err*; null when it has none.' }),
    counters: Type.Record(Type.String(), Type.Integer(), { description: 'Every per-queue counter of `ethtool -S` (name without the queue part), as deltas.' }),
    txTimeouts: Type.Optional(
      Type.Union([Type.Integer({ unit: 'events' }), Type.Null()], { description: 'TX only: transmit watchdog timeouts in the window; null when unreadable.' }),
    ),
    bql: Type.Optional(
      Type.Object(
        {
          inflight: Type.Union([Type.Integer({ unit: 'bytes' }), Type.Null()], { description: 'Bytes in flight at the end.' }),
          limit: Type.Union([Type.Integer({ unit: 'bytes' }), Type.Null()], { description: 'The byte queue limit at the end.' }),
        },
        { additionalProperties: false, description: 'TX only: byte queue limits at the end; absent without BQL.' },
      ),
    ),
  },
  { additionalProperties: false },
);

const DEVICE = Type.Object(
  {
    ...IFACE_DEVICE.properties,
    queues: Type.Optional(
      Type.Object(
        {
          rx: Type.Integer({ description: 'RX queues the device has (sysfs).' }),
          tx: Type.Integer({ description: 'TX queues the device has (sysfs).' }),
          counted: Type.Boolean({ description: 'Whether per-queue counters came from `ethtool -S`.' }),
          queues: Type.Array(QUEUE, { description: 'Each queue and what it counted over the window.' }),
        },
        { additionalProperties: false, description: 'Its RX/TX queues and what each counted; absent with `queues: false`.' },
      ),
    ),
  },
  { additionalProperties: false },
);

const QUEUE_AT = {
  device: Type.String({ description: 'The device.' }),
  direction: DIRECTION,
  queue: Type.Integer({ description: 'The queue\'s index.' }),
};

const QUEUE_PROBLEM = Type.Object({ ...QUEUE_AT, count: Type.Integer({ unit: 'events', description: 'How many (drops or timeouts) it counted.' }) }, { additionalProperties: false });

export const DATA = Type.Object(
  {
    durationMs: Type.Number({ unit: 'ms', description: 'Time between the first and the last sample, from the reads\' timestamps.' }),
    intervalMs: Type.Number({ unit: 'ms', description: 'Time between two reads of the counters.' }),
    samples: Type.Integer({ description: 'How many times the counters were read.' }),
    devices: Type.Array(DEVICE, { description: 'Every watched device, with its deltas and rates.' }),
    totals: IFACE_TOTALS,
    ...IFACE_DROPPING_FIELDS,
    queueSkew: Type.Array(
      Type.Object(
        {
          ...QUEUE_AT,
          share: Type.Number({ unit: 'share', description: 'Its share of the direction\'s packets, 0..1.' }),
          packets: Type.Integer({ unit: 'packets', description: 'Packets of the direction over every queue.' }),
          queues: Type.Integer({ description: 'Queues with counters in that direction.' }),
        },
        { additionalProperties: false },
      ),
      { description: 'Queues that took nearly all (≥ 90% of ≥ 100 packets) of a device\'s traffic in one direction while other queues idled.' },
    ),
    queueDrops: Type.Array(QUEUE_PROBLEM, { description: 'Queues whose drop counters (ethtool -S) rose.' }),
    txTimeouts: Type.Array(QUEUE_PROBLEM, { description: 'TX queues whose transmit watchdog fired.' }),
    notes: Type.Array(Type.String(), { description: 'Vanished devices, counter resets, unreadable files.' }),
  },
  { additionalProperties: false },
);

export type IfaceData = Static<typeof DATA>;
