/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between offload.bpf.c and probes/other.offload/probe.ts (which decodes these layouts). */
#ifndef EBPFNET_OFFLOAD_H
#define EBPFNET_OFFLOAD_H

#include "netdev.h"
#include "pending.h"

#define OFFLOAD_MAX_DEVICES 1024
/* (device, gso_type) pairs counted in `gso_types`. */
#define OFFLOAD_MAX_TYPES 4096
/* log2 buckets of gso_size and gso_segs (u16): slot 0 holds 0, slot k [2^(k-1), 2^k). */
#define OFFLOAD_SLOTS 17
/* CHECKSUM_NONE, CHECKSUM_UNNECESSARY, CHECKSUM_COMPLETE, CHECKSUM_PARTIAL */
#define OFFLOAD_CSUM_STATES 4

/* Slots of the per-CPU `totals` array. */
enum offload_total {
	OFFLOAD_TOTAL_SEEN = 0,    /* packets that passed the filters, but those still in `pending` */
	OFFLOAD_TOTAL_UNKEYED = 1, /* counted but not kept per device (`devices` was full) or per type (`gso_types`) */
	OFFLOAD_TOTAL_SLOTS = 2,
};

/* Key of the `gso_types` hash map (value: GSO packets, u64): a device and a whole
 * skb_shinfo()->gso_type (SKB_GSO_* bits; their names come from the kernel's BTF). 28 bytes. */
struct offload_type_key {
	struct netdev_id dev;
	__u32 gso_type;
};

/* Value of the `devices` hash map (key: struct netdev_id); 440 bytes, no holes. */
struct offload_value {
	__u64 packets;
	__u64 bytes;
	__u64 gso_packets;                      /* gso_size != 0 (skb_is_gso) */
	__u64 gso_bytes;
	__u64 gso_segs;                         /* sum of their gso_segs: the packets on the wire */
	__u64 size_slots[OFFLOAD_SLOTS];        /* GSO packets per log2 bucket of gso_size */
	__u64 segs_slots[OFFLOAD_SLOTS];        /* GSO packets per log2 bucket of gso_segs */
	__u64 csum[OFFLOAD_CSUM_STATES];        /* all packets per ip_summed */
	__u64 gso_csum[OFFLOAD_CSUM_STATES];    /* GSO packets per ip_summed */
	/* Abnormal packets. */
	__u64 size_without_type;  /* a gso_size but no gso_type: segmentation cannot tell how */
	__u64 size_over_mtu;      /* gso_size larger than the device's MTU */
	__u64 unsupported;        /* GSO types the device does not offload reached its driver */
	__u64 oversize;           /* not GSO, yet longer than MTU + link header */
	__u64 unsupported_bits;   /* OR of those gso_type bits */
	__u64 features;           /* dev->features, last seen */
	__u32 mtu;                /* last seen */
	__u32 max_gso_size;
	__u32 max_len;            /* longest non-GSO packet */
	__u32 pad;
};

/* A CPU's way (bpf/include/pending.h) of non-GSO packets not in `devices` yet: those of one
 * device and checksum state, all oversize or none; 64 bytes. */
struct offload_pending {
	struct netdev_id dev;
	__u64 features;  /* last seen */
	__u64 packets;   /* 0: the way is empty */
	__u64 bytes;
	__u32 mtu;       /* last seen */
	__u32 max_len;
	__u8 csum;       /* ip_summed & 3 */
	__u8 oversize;   /* 1: longer than MTU + link header */
	__u8 pad[6];
};

#endif
