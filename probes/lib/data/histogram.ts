// Declared data of the log2 histograms findings carry: sizes in bytes (other.dev-queue,
// other.offload), times in µs (cpu.runqlat's waits, the latency probes' layer statistics).
import Type, { type TInteger } from '#typebox';
import { packets, bytes, events } from './fields.js';

/** One non-empty log2 bucket of packet sizes (histogram.ts's countBuckets). */
export const SIZE_BUCKET = Type.Object(
  {
    low: bytes('Inclusive lower bound.'),
    high: bytes('Inclusive upper bound.'),
    packets: packets('Packets in the bucket.'),
  },
  { additionalProperties: false },
);

/** One non-empty log2 bucket of times (histogram.ts's usBuckets); `count` says what it counts. */
const usBucket = (count: TInteger) =>
  Type.Object(
    {
      lowUs: Type.Number({ description: 'Inclusive lower bound.', unit: 'µs' }),
      highUs: Type.Number({ description: 'Exclusive upper bound.', unit: 'µs' }),
      count,
    },
    { additionalProperties: false },
  );

export const US_BUCKET = usBucket(events('Events in the bucket.'));

/** A histogram's non-empty log2 buckets of times, each counting `count`. */
export const usBucketList = (count: TInteger, description: string) => Type.Array(usBucket(count), { description });

/** A latency distribution's summary (lathist.ts's layerStats): percentiles within ~25%, max and mean exact. */
export const LATENCY_SUMMARY_FIELDS = {
  count: packets('Packets timed.'),
  p50: Type.Number({ description: 'Median time, interpolated within log-linear buckets (within ~25%).', unit: 'µs' }),
  p95: Type.Number({ description: '95th percentile time (within ~25%).', unit: 'µs' }),
  p99: Type.Number({ description: '99th percentile time (within ~25%), capped at max.', unit: 'µs' }),
  max: Type.Number({ description: 'Longest time seen (exact).', unit: 'µs' }),
  mean: Type.Number({ description: 'Mean time (exact).', unit: 'µs' }),
};

/** The summary with its buckets, for the histogram. */
export const LAYER_STATS_FIELDS = {
  ...LATENCY_SUMMARY_FIELDS,
  buckets: usBucketList(packets('Packets in the bucket.'), 'Non-empty log2 buckets, for the histogram.'),
};
