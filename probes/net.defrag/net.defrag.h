/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between defrag.bpf.c and probes/net.defrag/probe.ts (which decodes these layouts). */
#ifndef EBPFNET_DEFRAG_H
#define EBPFNET_DEFRAG_H

#define DEFRAG_MAX_ENTRIES 4096
/* How many drop reasons the probe can select (this kernel's FRAG_* and DUP_FRAG). */
#define DEFRAG_MAX_REASONS 8

/* The IPv4 filters of both objects (defrag.bpf.c, defrag-kprobe.bpf.c), set before load:
 * addresses in network byte order; 0 = any. */
#define DEFRAG_IPV4_FILTERS                    \
	const volatile __u32 targ_saddr = 0;   \
	const volatile __u32 targ_daddr = 0;   \
	const volatile __u8 targ_proto = 0

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

/* ---- defrag-kprobe.bpf.c: the reassembly queues (kprobes ip_defrag, ip_expire) ---------- */

/* Slots of its per-CPU `totals` array. */
enum defrag_kprobe_total {
	DEFRAG_KP_ATTEMPTS = 0,          /* fragments handed to ip_defrag that passed the filters */
	DEFRAG_KP_ATTEMPTS_UNKEYED = 1,  /* of which not aggregated: `attempts` was full */
	DEFRAG_KP_EXPIRED = 2,           /* incomplete queues expired (ip_expire) that passed the filters */
	DEFRAG_KP_EXPIRED_UNKEYED = 3,   /* of which not kept: `expired` was full */
	DEFRAG_KP_SLOTS = 4,
};

/* Key of `attempts` (20 bytes, no holes). Value: __u64 count. IPv4 only: ip_defrag is IPv4's. */
struct defrag_attempt_key {
	__u32 netns;     /* inode of the namespace reassembling */
	__be32 saddr;
	__be32 daddr;
	__u32 user;      /* enum ip_defrag_users: local delivery, conntrack (+ zone), ... */
	__u8 protocol;
	__u8 pad[3];
};

/* Key of `expired`: one reassembly queue, as the kernel keys it (struct frag_v4_compare_key)
 * plus its namespace (20 bytes, no holes). */
struct defrag_queue_key {
	__u32 netns;
	__be32 saddr;
	__be32 daddr;
	__u32 user;
	__be16 id;       /* the IP ID shared by the datagram's fragments */
	__u8 protocol;
	__u8 pad;
};

/* Value of `expired` (24 bytes): what the queue held when its timer fired. */
struct defrag_queue_value {
	__u64 expiries;  /* more than 1: the same key expired again (an ID reused by the sender) */
	__u32 meat;      /* bytes of data received */
	__u32 len;       /* the datagram's length, known once the last fragment came (0 before) */
	__u32 flags;     /* INET_FRAG_FIRST_IN (1), INET_FRAG_LAST_IN (2) */
	__u32 pad;
};

#endif
