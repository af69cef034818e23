/* SPDX-License-Identifier: GPL-2.0 */
/* Counting by key in a BPF hash map whose values are __u64 counts, shared by the programs
 * that aggregate in the kernel. Include after the BPF helper headers. */
#ifndef EBPFNET_COUNT_H
#define EBPFNET_COUNT_H

/* Adds one to the count of `key` in `map`, creating it at 1; false when the map is full. */
static __always_inline bool count_key(void *map, const void *key)
{
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(map, key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return true;
	}
	if (!bpf_map_update_elem(map, key, &one, BPF_NOEXIST))
		return true;
	/* Another CPU may have inserted it since the lookup: add to its entry then. */
	v = bpf_map_lookup_elem(map, key);
	if (!v)
		return false;
	__sync_fetch_and_add(v, 1);
	return true;
}

#endif
