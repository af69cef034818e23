// Declared data of the log2 histograms findings carry: sizes in bytes (other.dev-queue,
// other.offload), times in µs (cpu.runqlat's buckets, perf.vm-latency's layer statistics).
import Type from 'typebox';
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

/** One non-empty log2 bucket of times (histogram.ts's usBuckets). */
export const US_BUCKET = Type.Object(
  {
    lowUs: Type.Number({ description: 'Inclusive lower bound.', unit: 'µs' }),
    highUs: Type.Number({ description: 'Exclusive upper bound.', unit: 'µs' }),
    count: events('Events in the bucket.'),
  },
  { additionalProperties: false },
);

/** A latency distribution (lathist.ts's layerStats): percentiles within ~25%, max and mean exact. */
export const LAYER_STATS_FIELDS = {
  count: packets('Packets timed.'),
  p50: Type.Number({ description: 'Median time, interpolated within log-linear buckets (within ~25%).', unit: 'µs' }),
  p95: Type.Number({ description: '95th percentile time (within ~25%).', unit: 'µs' }),
  p99: Type.Number({ description: '99th percentile time (within ~25%), capped at max.', unit: 'µs' }),
  max: Type.Number({ description: 'Longest time seen (exact).', unit: 'µs' }),
  mean: Type.Number({ description: 'Mean time (exact).', unit: 'µs' }),
  buckets: Type.Array(US_BUCKET, { description: 'Non-empty log2 buckets, for the histogram.' }),
};
