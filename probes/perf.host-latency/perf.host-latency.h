/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between hostlat.bpf.c and probes/perf.host-latency/probe.ts (which decodes these layouts). */
#ifndef EBPFNET_HOSTLAT_H
#define EBPFNET_HOSTLAT_H

/* Entries of the skb table (a power of two: direct-mapped by address, so a packet never
 * completed is overwritten, it cannot fill it). */
#define HOSTLAT_SKBS 16384
#define HOSTLAT_DROP_KEYS 1024
/* The most skbs one qdisc_dequeue hands out at once (bulk dequeue) that are stamped. */
#define HOSTLAT_BULK 8

enum hostlat_dir {
	HOSTLAT_TX = 0,
	HOSTLAT_RX = 1,
	HOSTLAT_DIRS = 2,
};

/* Stages in path order; each stage's latency is the time since the packet's previous stamp. */
enum hostlat_stage {
	HOSTLAT_TX_QUEUE = 0,   /* net_dev_queue: the path starts */
	HOSTLAT_TX_ENQUEUE = 1, /* qdisc_enqueue */
	HOSTLAT_TX_DEQUEUE = 2, /* qdisc_dequeue: the wait in the qdisc */
	HOSTLAT_TX_START = 3,   /* net_dev_start_xmit: handed to the driver */
	HOSTLAT_TX_DONE = 4,    /* net_dev_xmit rc 0: the driver took it (the path ends) */
	HOSTLAT_RX_ENTRY = 5,   /* napi_gro_receive_entry / netif_receive_skb_entry / netif_rx_entry */
	HOSTLAT_RX_RECEIVE = 6, /* netif_receive_skb: the stack takes it (after the backlog) */
	HOSTLAT_RX_SOCKET = 7,  /* sk_data_ready with the skb at the tail of the socket's queue (the path ends) */
	HOSTLAT_STAGES = 8,
};

/* Histograms (each CPU's `hists`, struct lat_hist): one per stage, then a total per direction. */
#define HOSTLAT_HISTS (HOSTLAT_STAGES + HOSTLAT_DIRS)

/* Counters (each CPU's `counters`): packets at each stage, then per direction. The kernel
 * counts a stage's packets only where they start (the first stages, and netif_receive_skb for
 * packets with no entry stamp), and per direction only `ended`, `replaced` and `slow`: the
 * reader (maps.ts) derives the rest from the histograms' counts and the drops. */
#define HOSTLAT_C_DIR_BASE HOSTLAT_STAGES
enum hostlat_dir_counter {
	HOSTLAT_C_STARTED = 0,  /* stamped at the direction's first stage seen */
	HOSTLAT_C_DONE = 1,     /* reached the last stage */
	HOSTLAT_C_DROPPED = 2,  /* freed by kfree_skb on the way (by reason in `drops`) */
	HOSTLAT_C_ENDED = 3,    /* TX: net_dev_xmit with an error; RX: consumed without a socket delivery */
	HOSTLAT_C_REPLACED = 4, /* a new packet at an skb address still tracked (the old one left unseen) */
	HOSTLAT_C_SLOW = 5,     /* completed with a total of at least threshold_ns */
	HOSTLAT_C_PER_DIR = 6,
};
#define HOSTLAT_C_SLOTS (HOSTLAT_C_DIR_BASE + HOSTLAT_DIRS * HOSTLAT_C_PER_DIR)

/* One direction of a tracked skb: its first and latest stamps (ktime ns; first_ts 0: not tracked). */
struct hostlat_path {
	__u64 first_ts;
	__u64 last_ts;
	__u32 ifindex; /* the device of the first stamp */
	__u8 stage;    /* enum hostlat_stage of the latest stamp */
	__u8 proto;
	__u16 lport;   /* RX: the local (destination) TCP/UDP port, host byte order; 0 for others */
};

/* An entry of the `skbs` table, one cache line: the skb whose address hashes to it, both ways
 * (a veth hands the very skb it transmits to its peer's receive path). */
struct hostlat_skb {
	__u64 skb; /* its address; another skb hashing here takes the entry over */
	struct hostlat_path path[HOSTLAT_DIRS];
	__u64 pad;
};

/* Key of the `drops` counts. */
struct hostlat_drop {
	__u32 reason; /* enum skb_drop_reason */
	__u8 dir;
	__u8 stage;   /* the latest stage reached */
	__u16 pad;
};

/* A CPU's own entry of the `cpus` array: its counters, the drops of its last drop key not yet
 * added to `drops` (pend_count of pend_key), the tracked skb its netif_receive_skb is
 * processing (its socket's sk_data_ready follows in the same call), and its histograms. */
struct hostlat_cpu {
	__u64 counters[HOSTLAT_C_SLOTS];
	__u64 rx_current;
	__u64 pend_count;
	struct hostlat_drop pend_key;
	struct lat_hist hists[HOSTLAT_HISTS];
};

#endif
