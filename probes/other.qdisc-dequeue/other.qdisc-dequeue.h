/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between qdisc-dequeue.bpf.c and probes/other.qdisc-dequeue/probe.ts (which decodes
 * these layouts). */
#ifndef EBPFNET_QDISC_DEQUEUE_H
#define EBPFNET_QDISC_DEQUEUE_H

#include "netdev.h"

/* Packets per dequeue call, log2 buckets: slot 0 holds empty dequeues, slot k (k >= 1)
 * [2^(k-1), 2^k) packets; the last slot also holds everything larger. */
#define QDEQ_SLOTS 10
#define QDEQ_MAX_ENTRIES 1024
#define QDEQ_KIND_LEN 16

/* Slots of the per-CPU `totals` array. */
enum qdeq_total {
	QDEQ_TOTAL_SEEN = 0,     /* dequeue calls that passed the filters */
	QDEQ_TOTAL_UNKEYED = 1,  /* counted in SEEN but not aggregated: `qdiscs` was full */
	QDEQ_TOTAL_SLOTS = 2,
};

/* Key of the `qdiscs` hash map: one root qdisc of one device (32 bytes, no holes). */
struct qdeq_key {
	struct netdev_id dev;
	__u32 handle;   /* the qdisc's handle, major << 16 | minor */
	__u32 parent;   /* TC_H_ROOT (0xffffffff) for a device's root qdisc */
};

/* Value of `qdiscs` (160 bytes, no holes). qlen and backlog are read right after the dequeue:
 * what is still waiting. */
struct qdeq_value {
	__u64 slots[QDEQ_SLOTS]; /* dequeue calls per log2 bucket of packets dequeued */
	__u64 calls;             /* dequeue calls */
	__u64 packets;           /* packets they dequeued (the tracepoint's `packets`, bulk included) */
	__u64 empty;             /* calls that dequeued nothing (empty, or a shaper holding back) */
	__u64 qlen_sum;          /* sum of qlen over the calls (mean = qlen_sum / calls) */
	__u64 backlog_sum;       /* sum of backlog bytes over the calls */
	__u32 qlen_max;
	__u32 backlog_max;       /* bytes */
	__u32 requeues_first;    /* the qdisc's requeue counter when first seen */
	__u32 requeues_last;     /* and at the latest dequeue */
	__u64 gso_anomalies;     /* dequeued skbs with a GSO size but no GSO type */
	char kind[QDEQ_KIND_LEN]; /* the qdisc's kind (ops->id), read when first seen */
};

#endif
