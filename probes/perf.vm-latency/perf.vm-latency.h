/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between perf.vm-latency.bpf.c and probes/perf.vm-latency/probe.ts (which decodes these
 * layouts). Include after lathist.h. */
#ifndef EBPFNET_VMLAT_H
#define EBPFNET_VMLAT_H

/* Entries of the packet-key table and of the table of skbs within their exit device. */
#define VMLAT_FLOWS 16384
#define VMLAT_SKBS 8192
#define VMLAT_UPLINKS 256

enum vmlat_dir {
	VMLAT_TO_VM = 0,   /* uplink rx -> bridge/OVS -> tap queue -> tap xmit -> read by QEMU */
	VMLAT_FROM_VM = 1, /* tap rx -> bridge/OVS -> uplink queue -> uplink xmit -> driver took it */
	VMLAT_DIRS = 2,
};

enum vmlat_layer {
	VMLAT_BRIDGE = 0,   /* rx on the entry device -> net_dev_queue on the exit device (packet key) */
	VMLAT_QDISC = 1,    /* net_dev_queue -> net_dev_start_xmit on the exit device */
	VMLAT_DRIVER = 2,   /* from the VM: net_dev_start_xmit -> net_dev_xmit (rc 0) on the uplink */
	VMLAT_TUN_RING = 3, /* to the VM: net_dev_start_xmit on the tap -> skb consumed (QEMU read it) */
	VMLAT_TOTAL = 4,    /* first stamp -> delivered (consumed by QEMU / taken by the uplink driver) */
	VMLAT_LAYERS = 5,
};

/* Counters, per direction: index dir * VMLAT_C_PER_DIR + counter. Then the global ones. */
enum vmlat_counter {
	VMLAT_C_RX = 0,              /* received on the entry device (path start) */
	VMLAT_C_QUEUE = 1,           /* net_dev_queue on the exit device */
	VMLAT_C_XMIT = 2,            /* net_dev_start_xmit on the exit device */
	VMLAT_C_DONE = 3,            /* delivered: consumed from the tun ring / net_dev_xmit rc 0 */
	VMLAT_C_QUEUE_UNMATCHED = 4, /* queued with no rx stamp of the same key (came another way) */
	VMLAT_C_XMIT_UNMATCHED = 5,  /* start_xmit with no queue stamp (requeued, segmented, bypass) */
	VMLAT_C_XMIT_FAILED = 6,     /* net_dev_xmit rc != 0 (the driver refused or dropped it) */
	VMLAT_C_DROPPED = 7,         /* to the VM: freed as a drop after the tap's start_xmit */
	VMLAT_C_PER_DIR = 8,
	VMLAT_C_NOT_IPV4 = 16,       /* frames on the tap or an uplink that are not IPv4 (ARP...) */
	VMLAT_C_STALE = 17,          /* a tracked tap skb consumed on another device: discarded */
	VMLAT_C_SLOTS = 18,
};

/* Key of a packet across devices (the OVS userspace datapath re-injects a new skb, so the skb
 * pointer cannot be followed): IPv4 header fields, L4 fields and the first bytes of the L4
 * payload (UDP from unconnected sockets with DF carries IP id 0). 40 bytes, no holes. */
struct vmlat_key {
	__u32 saddr;   /* network byte order */
	__u32 daddr;
	__u16 id;      /* IP id, network byte order */
	__u16 frag;    /* flags and fragment offset, network byte order */
	__u8 proto;
	__u8 dir;      /* enum vmlat_dir */
	__u16 len;     /* IP total length, network byte order (0 for TCP) */
	__u32 l4a;     /* TCP/UDP ports as on the wire; ICMP type, code, id */
	__u32 l4b;     /* TCP seq; ICMP seq */
	__u32 l4c;     /* TCP ack */
	__u32 pad;
	__u64 payload; /* up to 8 bytes of L4 payload in the linear area, zero-padded */
};

/* An entry of the `flows` table (direct-mapped by a hash of the key, one cache line): the stamps
 * of a packet on its way (ktime ns; both 0: free). Another key hashing here takes it over. */
struct vmlat_flow {
	struct vmlat_key key;
	__u64 rx_ts;
	__u64 queue_ts;
	__u32 out_ifindex; /* the exit device of the queue stamp */
	__u32 pad;
};

/* What an entry of the `skbs` table holds. */
enum vmlat_skb_state {
	VMLAT_SKB_FREE = 0,
	VMLAT_SKB_QUEUED = 1, /* queued on its exit device, until net_dev_start_xmit there */
	VMLAT_SKB_ON_TAP = 2, /* to the VM: the tap's driver took it, until QEMU reads it (consume_skb) */
};

/* An entry of the `skbs` table (direct-mapped by skb address, one cache line): an skb within
 * its exit device, so later stages find it by one line, without parsing its headers. */
struct vmlat_skb {
	__u64 skb;         /* its key (skb-key.h). Another skb hashing here takes it over */
	__u64 queue_ts;    /* QUEUED: net_dev_queue on the exit device */
	__u64 xmit_ts;     /* ON_TAP: net_dev_start_xmit on the tap */
	__u64 rx_ts;       /* the packet's rx stamp on its entry device, 0 when it came another way */
	__u32 out_ifindex; /* QUEUED: the exit device */
	__u8 state;        /* enum vmlat_skb_state */
	__u8 dir;          /* enum vmlat_dir */
	__u16 pad;
	__u64 pad2[3];
};

/* The skb a CPU is handing to a driver: net_dev_start_xmit -> net_dev_xmit (xmit_one). */
struct vmlat_stash {
	__u64 skb;
	__u64 xmit_ts;
	__u64 rx_ts;
	__u32 dir;
	__u32 pad;
};

/* A CPU's own entry of the `cpus` array: its stash, counters (enum vmlat_counter) and a
 * histogram (lathist.h) per (direction, layer). */
struct vmlat_cpu {
	struct vmlat_stash stash;
	__u64 counters[VMLAT_C_SLOTS];
	struct lat_hist hists[VMLAT_DIRS * VMLAT_LAYERS];
};

#endif
