// How numbers and tool output read in findings: values kept to a useful precision, durations
// in the unit that suits them, shares as percentages, a tool's message as its first line.

/** `n` to `digits` decimals (ms values to the µs by default). */
export function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export interface FmtUsOptions {
  /**
   * Whole µs below a millisecond: for percentiles of log2 buckets in µs, which have no finer
   * resolution (`3 µs`, not `3.4 µs` or `800 ns`).
   */
  wholeUs?: boolean;
}

/** 850 ns, 12 µs, 4.2 ms, 1.3 s (from µs). */
export function fmtUs(us: number, opts: FmtUsOptions = {}): string {
  if (opts.wholeUs && us < 1000) return `${Math.round(us)} µs`;
  if (us < 1) return `${Math.round(us * 1000)} ns`;
  const [x, unit] = us < 1000 ? [us, 'µs'] : us < 1e6 ? [us / 1e3, 'ms'] : [us / 1e6, 's'];
  return `${x < 10 ? Number(x.toFixed(1)) : Math.round(x)} ${unit}`;
}

/** The first non-blank line of a tool's output, trimmed (its error message); empty when there is none. */
export function firstLine(text: string): string {
  return (text.split('\n').find((l) => l.trim() !== '') ?? '').trim();
}
