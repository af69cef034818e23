/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between defrag.bpf.c and probes/net.defrag/probe.ts (which decodes these layouts). */
#ifndef EBPFNET_DEFRAG_H
#define EBPFNET_DEFRAG_H

#define DEFRAG_MAX_ENTRIES 4096
/* How many drop reasons the probe can select (this kernel's FRAG_* and DUP_FRAG). */
#define DEFRAG_MAX_REASONS 8

/* Slots of the per-CPU `totals` array. */
enum defrag_total {
	DEFRAG_TOTAL_SEEN = 0,     /* fragment drops that passed the filters */
	DEFRAG_TOTAL_UNKEYED = 1,  /* counted in SEEN but not aggregated: `agg` was full */
	DEFRAG_TOTAL_SLOTS = 2,
};

/* Key of the `agg` hash map (40 bytes, no holes). Value: __u64 count.
 * IPv4 addresses fill the first 4 bytes of saddr/daddr, the rest stays 0. */
struct defrag_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 reason;    /* enum skb_drop_reason */
	__u8 family;     /* 4 or 6; 0 when the header could not be read */
	__u8 protocol;   /* IPv4 protocol, IPv6 next header of the fixed header */
	__u16 pad;
};

#endif
