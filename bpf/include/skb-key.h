/* SPDX-License-Identifier: GPL-2.0 */
/* A number that identifies an skb by its address, for tables direct-mapped by it. Include after
 * the BPF helper headers. */
#ifndef EBPFNET_SKB_KEY_H
#define EBPFNET_SKB_KEY_H

/* The skb's address; in tp_btf (`direct`) less the address of `base`, one of the program's maps:
 * the verifier allows no arithmetic on a typed pointer but makes the difference of two pointers a
 * number. The same programs always use the same form, so keys compare. */
#define SKB_KEY(skb, direct, base) ((direct) ? (__u64)((void *)(skb) - (void *)(base)) : (__u64)(skb))

/* The slot of an skb key in a table of `entries` (a power of two): skbs are 256-byte slab objects,
 * so the bits above those, folded with higher ones. */
static __always_inline __u32 skb_slot(__u64 key, __u32 entries)
{
	return (__u32)((key >> 8) ^ (key >> 22)) & (entries - 1);
}

#endif
