/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between hostmetrics.bpf.c and probes/perf.host-metrics/probe.ts (which decodes these
 * layouts). Every map is a per-CPU array: each CPU adds to its own copy without atomics and
 * the probe reads one value per CPU. */
#ifndef EBPFNET_HOSTMETRICS_H
#define EBPFNET_HOSTMETRICS_H

/* Softirq vectors (NR_SOFTIRQS in include/linux/interrupt.h: HI, TIMER, NET_TX, NET_RX, BLOCK,
 * IRQ_POLL, TASKLET, SCHED, HRTIMER, RCU). */
#define HM_VECTORS 10
/* Softirq run times, log2 buckets of µs: slot 0 holds < 1 µs, slot k (k >= 1) [2^(k-1), 2^k)
 * µs; the last slot also holds everything larger. */
#define HM_SLOTS 27

/* Value of `softirqs` (key: vector), per CPU: 248 bytes, no holes. The run's start beside its
 * counts: an exit touches one line of them, not a second map's. */
struct hm_softirq {
	__u64 started_ns; /* when the running softirq of this vector started (a vector does not nest on one CPU); 0: none */
	__u64 count;      /* runs that ended (softirq_exit after its softirq_entry) */
	__u64 total_ns;   /* their time, entry to exit */
	__u64 max_ns;
	__u64 slots[HM_SLOTS];
};

/* Keys of `packets`. */
enum hm_dir { HM_RX = 0, HM_TX = 1, HM_DIRS = 2 };

/* Value of `packets` (key: enum hm_dir), per CPU. */
struct hm_packets {
	__u64 packets;   /* RX: netif_receive_skb; TX: net_dev_xmit with NETDEV_TX_OK */
	__u64 bytes;     /* RX: skb->len (from L3: the link-layer header is pulled); TX: the frame */
	__u64 failed;    /* TX only: net_dev_xmit with another result (busy, dropped) */
};

/* Slots of the per-CPU `totals` array. */
enum hm_total {
	HM_T_EXIT_UNPAIRED = 0,  /* softirq_exit without an entry seen (running when attached) */
	HM_T_SLOTS = 1,
};

#endif
