/* SPDX-License-Identifier: GPL-2.0 */
/* Counting in the kernel, shared by the programs that aggregate there: by key in a hash map
 * of __u64 counts, and per-CPU totals. Include after the BPF helper headers. */
#ifndef EBPFNET_COUNT_H
#define EBPFNET_COUNT_H

#include "maps.h"

/* Adds `n` to the count of `key` in `map`, creating it at `n`; false when the map is full. */
static __always_inline bool count_key_by(void *map, const void *key, __u64 n)
{
	__u64 *v;

	v = bpf_map_lookup_elem(map, key);
	if (v) {
		__sync_fetch_and_add(v, n);
		return true;
	}
	if (!bpf_map_update_elem(map, key, &n, BPF_NOEXIST))
		return true;
	/* Another CPU may have inserted it since the lookup: add to its entry then. */
	v = bpf_map_lookup_elem(map, key);
	if (!v)
		return false;
	__sync_fetch_and_add(v, n);
	return true;
}

/* Adds one to the count of `key` in `map`, creating it at 1; false when the map is full. */
static __always_inline bool count_key(void *map, const void *key)
{
	return count_key_by(map, key, 1);
}

/* A hash map `name` of __u64 counts by `key_type`, as count_key bumps them. */
#define COUNTS_MAP(name, key_type, entries) HASH_MAP(name, entries, key_type, __u64)

/* The per-CPU array named `totals`, of `slots` counters, that a program bumps and userspace
 * sums over CPUs (probe-side: slotTotals / readTotals). */
#define TOTALS_MAP(slots) PERCPU_ARRAY_MAP(totals, slots, __u64)

/* Adds one to a per-CPU counter slot of a PERCPU_ARRAY (this CPU's slot: no atomics needed). */
static __always_inline void bump_slot(void *map, __u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(map, &slot);

	if (n)
		*n += 1;
}

/* The entry of a `key` the hash map `map` did not have, inserted as `init` (another CPU may
 * insert it first: its entry is used then). NULL when the map is full, counted in slot `unkeyed`
 * of the per-CPU `totals` array. */
static __always_inline void *insert_entry(void *map, const void *key, const void *init, void *totals, __u32 unkeyed)
{
	void *v;

	bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	v = bpf_map_lookup_elem(map, key);
	if (!v)
		bump_slot(totals, unkeyed);
	return v;
}

/* The value of `key` in `map`, inserted as `init` when new (insert_entry). */
static __always_inline void *lookup_or_init(void *map, const void *key, const void *init, void *totals, __u32 unkeyed)
{
	void *v = bpf_map_lookup_elem(map, key);

	return v ? v : insert_entry(map, key, init, totals, unkeyed);
}

#endif
