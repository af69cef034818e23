/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between drops.bpf.c and probes/lib/drops/session.ts (which decodes these layouts). */
#ifndef EBPFNET_DROPS_H
#define EBPFNET_DROPS_H

#define DROPS_MAX_STACK_DEPTH 32
#define DROPS_MAX_ENTRIES 10240

/* How many of each a VM scope may name (probes/lib/drops/scope.ts rejects more). */
#define DROPS_MAX_VM_MACS 8
#define DROPS_MAX_VM_IPS 16 /* per family */
#define DROPS_MAX_VM_DEVS 8

/* Slots of the per-CPU `totals` array. */
enum drops_total {
	DROPS_TOTAL_SEEN = 0,     /* drops that passed the filters */
	DROPS_TOTAL_UNKEYED = 1,  /* counted in SEEN but not aggregated: `agg` was full */
	DROPS_TOTAL_SLOTS = 2,
};

/* Bits of drops_key.flags. */
enum drops_flag {
	DROPS_BY_DEV = 1,      /* the VM scope matched the skb's device or input device */
	DROPS_BY_MAC = 2,      /* ... else its Ethernet source or destination */
	DROPS_BY_IP = 4,       /* ... else its IPv4/IPv6 source or destination */
	DROPS_HOST_COPY = 8,   /* a broadcast/multicast/other-host frame dropped on its way up the
	                        * host's own stack of a device that is no bridge or OVS port */
	DROPS_OTHERHOST = 16,  /* before 5.17 (legacy kprobe) only: a frame for another host's MAC,
	                        * which names the drops at IP's receive functions (OTHERHOST later) */
};

/* Key of the `agg` hash map (32 bytes, no holes). Value: __u64 count. */
struct drops_key {
	__u64 location;  /* kernel address that freed the skb */
	__u32 reason;    /* enum skb_drop_reason (a subsystem's in the high 16 bits) */
	__u32 ifindex;   /* skb->dev's, else skb->skb_iif, else 0 */
	__u32 netns;     /* inode of the device's (else the socket's) netns, 0 when unknown */
	__s32 stack_id;  /* `stacks` id, negative when not collected */
	__u32 flags;     /* enum drops_flag */
	__u32 pad;
};

/* CPUs with a pending entry (64 KiB): the rest count every drop in `agg`, as before. */
#define DROPS_PENDING_CPUS 1024

/* One CPU's pending count (the `pending` array, an entry per CPU): the drops of the
 * key this CPU counted last, not yet added to `agg`. A flood of one key then costs one cache
 * line a drop instead of a hash lookup; another key moves the count into `agg` first. `seq` is
 * odd while the entry changes key, so a reader of a live window can tell a torn entry
 * (probes/lib/drops/session.ts). 64 bytes: one cache line, no holes. */
struct drops_pending {
	__u64 seq;
	__u64 count;     /* drops of `key` not in `agg` yet; 0: the entry is empty */
	__u64 seen;      /* drops this CPU let through the filters (it samples stacks by it) */
	__u64 pad;
	struct drops_key key;
};

#endif
