// Log2 histograms as the BPF programs keep them (slot 0 holds values under 1, slot k values in
// [2^(k-1), 2^k)), read back as their non-empty buckets and as percentiles at bucket resolution.
import type { Static } from '#typebox';
import { histPercentile } from '../../engine/probe/bpftrace.js';
import type { SIZE_BUCKET, US_BUCKET } from './data/histogram.js';

/** A bucket of a log2 histogram of times, and of sizes: their declared data (data/histogram.ts). */
export type UsBucket = Static<typeof US_BUCKET>;
export type SizeBucket = Static<typeof SIZE_BUCKET>;

/** The non-empty slots of a histogram of µs: slot 0 is under 1 µs, slot k [2^(k-1), 2^k) µs. */
export function usBuckets(slots: number[]): UsBucket[] {
  return slots.flatMap((count, k) => (count > 0 ? [{ lowUs: k === 0 ? 0 : 2 ** (k - 1), highUs: 2 ** k, count }] : []));
}

/**
 * The non-empty slots of a histogram of whole numbers (bytes, packets per call) with inclusive
 * bounds, slot 0 holding 0 and slot k [2^(k-1), 2^k - 1]; `field` names what was counted.
 */
export function countBuckets<K extends string>(slots: number[], field: K): Array<{ low: number; high: number } & Record<K, number>> {
  return slots.flatMap((n, k) => (n > 0 ? [{ low: k === 0 ? 0 : 2 ** (k - 1), high: k === 0 ? 0 : 2 ** k - 1, ...({ [field]: n } as Record<K, number>) }] : []));
}

export interface Pcts {
  p50Us: number;
  p95Us: number;
  p99Us: number;
}

/** Percentiles at bucket resolution (engine/probe/bpftrace.ts's convention), capped at the exact max. */
export function percentiles(slots: number[], maxUs: number): Pcts {
  const hist = usBuckets(slots).map((b) => ({ low: b.lowUs, high: b.highUs, count: b.count }));
  const pct = (p: number) => Math.min(histPercentile(hist, p) ?? 0, maxUs);
  return { p50Us: pct(50), p95Us: pct(95), p99Us: pct(99) };
}
