// The latency histogram of bpf/include/lathist.h (perf.vm-latency, perf.host-latency): a
// struct lat_hist per CPU of log-linear slots (4 per power of two of ns) with the count, sum and
// maximum, read back as percentiles interpolated within a slot, capped at the exact maximum.
import Type, { type Static } from '#typebox';
import { sumPerCpu, type U64 } from '../../engine/native/btf-layout.js';
import { LAYER_STATS_FIELDS } from './data/histogram.js';

/** bpf/include/lathist.h LATHIST_SLOTS. */
const SLOTS = 160;

/** Above these worst P99s (µs) the finding is a warning, then critical. */
export const WARN_P99_US = 1_000;
export const CRITICAL_P99_US = 10_000;

/** A struct lat_hist (bpf/include/lathist.h) summed over CPUs. */
export interface LatHist {
  count: number;
  sumNs: number;
  maxNs: number;
  /** [slot, count] of the non-empty slots. */
  slots: Array<[number, number]>;
}

const LAYER_STATS = Type.Object(LAYER_STATS_FIELDS);
/** Count, percentiles, max, mean and buckets of a layer (µs): its declared data (data/histogram.ts). */
export type LayerStats = Static<typeof LAYER_STATS>;

/** A struct lat_hist (bpf/include/lathist.h) as decoded from its BTF. */
export interface RawLatHist {
  slots: number[];
  count: number;
  sum_ns: U64;
  max_ns: U64;
}

/** One histogram from each CPU's copy, summed (the max is the largest); null when empty. */
export function latHistOf(perCpu: readonly RawLatHist[]): LatHist | null {
  if (perCpu.length === 0) return null;
  const h = sumPerCpu(perCpu, { max: ['max_ns'] });
  if (h.count === 0) return null;
  const slots: Array<[number, number]> = [];
  h.slots.forEach((n, s) => n > 0 && slots.push([s, n]));
  return { count: h.count, sumNs: Number(h.sum_ns), maxNs: Number(h.max_ns), slots };
}

/** Inclusive ns bounds of a histogram slot (bpf/include/lathist.h). */
export function slotBounds(slot: number): [number, number] {
  if (slot < 4) return [slot, slot];
  const m = Math.floor(slot / 4) + 1;
  const sub = slot % 4;
  const unit = 2 ** (m - 2);
  return [(4 + sub) * unit, (5 + sub) * unit - 1];
}

/**
 * The p-th percentile (ns) of slot counts: the rank's place interpolated within its slot,
 * capped at the exact maximum (never above the longest wait seen).
 */
export function percentileNs(slots: Array<[number, number]>, count: number, maxNs: number, p: number): number {
  if (count <= 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * count));
  let before = 0;
  for (const [slot, n] of [...slots].sort((a, b) => a[0] - b[0])) {
    if (before + n >= rank) {
      const [low, high] = slotBounds(slot);
      const last = slot === SLOTS - 1;
      const top = last ? Math.max(maxNs, low) : high + 1;
      return Math.min(low + ((rank - before) / n) * (top - low), maxNs);
    }
    before += n;
  }
  return maxNs;
}

const us = (ns: number) => Math.round(ns / 100) / 10;

/** Count, percentiles, max, mean and log2 buckets of a histogram (µs). */
export function layerStats(h: LatHist): LayerStats {
  const pct = (p: number) => us(percentileNs(h.slots, h.count, h.maxNs, p));
  // log2 buckets for the chart: four slots per power of two, slot / 4 is the power.
  const groups = new Map<number, number>();
  for (const [slot, n] of h.slots) groups.set(Math.floor(slot / 4), (groups.get(Math.floor(slot / 4)) ?? 0) + n);
  const buckets = [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([g, n]) => {
      const [lowNs, highNs] = g === 0 ? [0, 4] : [2 ** (g + 1), 2 ** (g + 2)];
      return { lowUs: lowNs / 1000, highUs: highNs / 1000, count: n };
    });
  return { count: h.count, p50: pct(50), p95: pct(95), p99: pct(99), max: us(h.maxNs), mean: us(h.sumNs / h.count), buckets };
}
