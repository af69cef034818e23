/* SPDX-License-Identifier: GPL-2.0 */
/* BTF-style map definitions, one line a map. They expand to the struct libbpf reads (type,
 * max_entries, key, value in that order), so a map's BTF is what the long form gives. Include
 * after bpf_helpers.h. */
#ifndef EBPFNET_MAPS_H
#define EBPFNET_MAPS_H

#define BPF_MAP(name, map_type, entries, key_type, value_type)	\
	struct {						\
		__uint(type, map_type);				\
		__uint(max_entries, entries);			\
		__type(key, key_type);				\
		__type(value, value_type);			\
	} name SEC(".maps")

#define HASH_MAP(name, entries, key_type, value_type) \
	BPF_MAP(name, BPF_MAP_TYPE_HASH, entries, key_type, value_type)
#define LRU_HASH_MAP(name, entries, key_type, value_type) \
	BPF_MAP(name, BPF_MAP_TYPE_LRU_HASH, entries, key_type, value_type)
#define ARRAY_MAP(name, entries, value_type) \
	BPF_MAP(name, BPF_MAP_TYPE_ARRAY, entries, __u32, value_type)
#define PERCPU_ARRAY_MAP(name, entries, value_type) \
	BPF_MAP(name, BPF_MAP_TYPE_PERCPU_ARRAY, entries, __u32, value_type)

/* An array whose entries are cache lines of their own when its value size is a multiple of 64:
 * mmapable, so the kernel page-aligns the values. Per-CPU entries there (CPU-major) share no line
 * between CPUs and cost a plain array lookup, inlined; an skb table there costs one line a hop. */
#define LINES_MAP(name, entries, value_type)			\
	struct {						\
		__uint(type, BPF_MAP_TYPE_ARRAY);		\
		__uint(map_flags, BPF_F_MMAPABLE);		\
		__uint(max_entries, entries);			\
		__type(key, __u32);				\
		__type(value, value_type);			\
	} name SEC(".maps")

/* A ring buffer of `bytes` (a power of two, a multiple of the page size). */
#define RINGBUF_MAP(name, bytes)				\
	struct {						\
		__uint(type, BPF_MAP_TYPE_RINGBUF);		\
		__uint(max_entries, bytes);			\
	} name SEC(".maps")

/* Stack traces of up to `depth` frames, keyed by the id bpf_get_stackid returns. */
#define STACK_MAP(name, entries, depth)				\
	struct {						\
		__uint(type, BPF_MAP_TYPE_STACK_TRACE);		\
		__uint(max_entries, entries);			\
		__uint(key_size, sizeof(__u32));		\
		__uint(value_size, (depth) * sizeof(__u64));	\
	} name SEC(".maps")

#endif
