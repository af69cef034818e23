/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between drops.bpf.c and probes/drops.kernel/probe.ts (which decodes these layouts). */
#ifndef EBPFNET_DROPS_H
#define EBPFNET_DROPS_H

#define DROPS_MAX_STACK_DEPTH 32
#define DROPS_MAX_ENTRIES 10240

/* Slots of the per-CPU `totals` array. */
enum drops_total {
	DROPS_TOTAL_SEEN = 0,     /* drops that passed the filters */
	DROPS_TOTAL_UNKEYED = 1,  /* counted in SEEN but not aggregated: `agg` was full */
	DROPS_TOTAL_SLOTS = 2,
};

/* Key of the `agg` hash map (24 bytes, no holes). Value: __u64 count. */
struct drops_key {
	__u64 location;  /* kernel address that freed the skb */
	__u32 reason;    /* enum skb_drop_reason */
	__u32 ifindex;   /* skb->dev's, else skb->skb_iif, else 0 */
	__u32 netns;     /* inode of the device's (else the socket's) netns, 0 when unknown */
	__s32 stack_id;  /* `stacks` id, negative when not collected */
};

#endif
