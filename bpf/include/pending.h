/* SPDX-License-Identifier: GPL-2.0 */
/* Counting in a cache line of the CPU's own instead of a shared hash entry: each CPU has
 * PENDING_WAYS entries of a BPF_F_MMAPABLE ARRAY (sized at open to possible CPUs × ways, so a
 * CPU's entries are contiguous and page-aligned: no line shared between CPUs). A packet with the
 * key its way holds costs increments in that line (~30 ns); another key first moves the way's
 * counts into the hash map (the cost of counting there every time, ~100 ns and atomics). The
 * reader merges the ways into the hash's entries after detaching. A program does not run again
 * on its CPU before it returns (BPF's recursion guard), so a way needs no atomics; programs of
 * different tracepoints keep their own arrays. Include after the BPF helper headers. */
#ifndef EBPFNET_PENDING_H
#define EBPFNET_PENDING_H

#include "count.h"

/* Ways per CPU (a power of two): the keys a CPU interleaves without moving counts, when their
 * hashes differ. */
#define PENDING_WAYS 4

/* The per-CPU ways `name` of `value_type` (max_entries set at open: possible CPUs × ways). */
#define PENDING_MAP(name, value_type) LINES_MAP(name, PENDING_WAYS, value_type)

/* This CPU's way for a key of hash `hash`; NULL past the array (count in the hash then). */
static __always_inline void *pending_way(void *map, __u32 hash)
{
	__u32 i = bpf_get_smp_processor_id() * PENDING_WAYS + (hash & (PENDING_WAYS - 1));

	return bpf_map_lookup_elem(map, &i);
}

/* Adds `n` to this CPU's counter `slot` of a PERCPU_ARRAY (a way's count moving on). */
static __always_inline void add_slot(void *map, __u32 slot, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(map, &slot);

	if (c)
		*c += n;
}

/* The entry of `key` in the hash map `map` (inserted as `init` when new) for `n` events moving
 * there from a way, added to this CPU's `totals` slot `seen`; NULL when the map is full, the
 * events then counted in slot `unkeyed`. */
static __always_inline void *way_entry(void *map, const void *key, const void *init, void *totals, __u32 seen, __u32 unkeyed, __u64 n)
{
	void *v;

	add_slot(totals, seen, n);
	v = lookup_or_init(map, key, init, totals, unkeyed);
	if (!v)
		add_slot(totals, unkeyed, n - 1); /* insert_entry counted one */
	return v;
}

/* Whether the `n` bytes at `a` and `b` (a multiple of 8, 8-aligned) are the same. */
static __always_inline bool same_words(const void *a, const void *b, __u32 n)
{
	const __u64 *x = a, *y = b;

	for (__u32 i = 0; i < n / 8; i++)
		if (x[i] != y[i])
			return false;
	return true;
}

#endif
