// Counts by key, as findings report them (`byReason`, `byDevice`...).

/** Adds `n` to `map[key]`. */
export function addCount(map: Record<string, number>, key: string, n: number): void {
  map[key] = (map[key] ?? 0) + n;
}

/** The counts, largest first (then by key): the order a finding lists them in. */
export function sortedCounts(map: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(map).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

export function sumBy<T>(list: T[], f: (t: T) => number): number {
  return list.reduce((n, t) => n + f(t), 0);
}

export function maxBy<T>(list: T[], f: (t: T) => number): number {
  return list.reduce((n, t) => Math.max(n, f(t)), 0);
}
