// The per-CPU ways of bpf/include/pending.h: counts a CPU keeps in a cache line of its own until
// another key takes the way. The programs' maps are sized at open (possible CPUs × ways) and a
// reader adds the ways that hold counts to the hash map's entries, after detaching (a way's
// counts move while the programs run).
import { possibleCpus } from '../../engine/native/features.js';
import type { BpfObject } from '../../engine/native/object.js';

/** PENDING_WAYS of bpf/include/pending.h. */
export const PENDING_WAYS = 4;

/** The `maxEntries` open option of ways maps named `names`: a CPU past the end counts in the hash map. */
export function pendingMaxEntries(...names: string[]): Record<string, number> {
  const entries = possibleCpus() * PENDING_WAYS;
  return Object.fromEntries(names.map((n) => [n, entries]));
}

/** The ways of map `name` that hold counts (`packets` above 0), decoded. */
export function pendingWays<V extends { packets: number }>(o: BpfObject, name = 'pending'): V[] {
  return o
    .map(name)
    .readAllDecoded<number, V>()
    .map((e) => e.value)
    .filter((v) => v.packets > 0);
}
