/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between dev-queue.bpf.c and probes/other.dev-queue/probe.ts (which decodes these
 * layouts). */
#ifndef EBPFNET_DEV_QUEUE_H
#define EBPFNET_DEV_QUEUE_H

#include "netdev.h"
#include "pending.h"

/* Packet sizes (skb->len, bytes), log2 buckets: slot k (k >= 1) holds [2^(k-1), 2^k) bytes;
 * the last slot also holds everything larger (2^17 = 128 KiB: GSO super-packets). */
#define DEVQ_SLOTS 19
#define DEVQ_MAX_ENTRIES 1024

/* What the driver's ndo_start_xmit returned (net_dev_xmit's rc). */
enum devq_rc {
	DEVQ_RC_OK = 0,      /* NETDEV_TX_OK */
	DEVQ_RC_BUSY = 1,    /* NETDEV_TX_BUSY: the driver's ring was full, the skb is requeued */
	DEVQ_RC_DROP = 2,    /* NET_XMIT_DROP */
	DEVQ_RC_CN = 3,      /* NET_XMIT_CN: congestion notified */
	DEVQ_RC_ERROR = 4,   /* a negative errno */
	DEVQ_RC_OTHER = 5,
	DEVQ_RC_SLOTS = 6,
};

/* Slots of the per-CPU `totals` array. */
enum devq_total {
	DEVQ_TOTAL_QUEUED = 0,   /* net_dev_queue events that passed the filters, but those in `queue_pending` */
	DEVQ_TOTAL_XMIT = 1,     /* net_dev_xmit events that passed the filters, but those in `xmit_pending` */
	DEVQ_TOTAL_UNKEYED = 2,  /* events counted but not aggregated: `devices` was full */
	DEVQ_TOTAL_SLOTS = 3,
};

/* Value of the `devices` hash map (key: struct netdev_id; 312 bytes, no holes). With the
 * classic tracepoints net_dev_xmit carries only the device's name: its results are then keyed
 * by name with ifindex and netns 0. */
struct devq_value {
	__u64 slots[DEVQ_SLOTS];      /* packets queued per log2 bucket of skb->len */
	__u64 packets;                /* handed to the device (net_dev_queue) */
	__u64 bytes;                  /* their skb->len: the frame with its link-layer header */
	__u64 l3[NETDEV_L3_SLOTS];    /* IPv4, IPv6, ARP, other */
	__u64 l4[NETDEV_L4_SLOTS];    /* TCP, UDP, ICMP, other IP, not IP */
	__u64 gso_packets;            /* skbs with a GSO size (segmented later) */
	__u64 gso_anomalies;          /* a GSO size but no GSO type */
	__u64 xmit[DEVQ_RC_SLOTS];    /* driver results per enum devq_rc (net_dev_xmit) */
	__u64 xmit_bytes;             /* bytes the driver took (rc NETDEV_TX_OK) */
};

/* A CPU's way (bpf/include/pending.h) of events not in `devices` yet, of one device and class:
 * in `queue_pending` packets of one size slot, L3/L4 class and GSO state; in `xmit_pending`
 * driver results of one kind. 64 bytes. */
struct devq_pending {
	struct netdev_id dev;
	__u8 slot;      /* queue: log2 slot of skb->len; xmit: enum devq_rc */
	__u8 l3;        /* queue: enum netdev_l3 */
	__u8 l4;        /* queue: enum netdev_l4 */
	__u8 gso;       /* queue: DEVQ_GSO bits */
	__u8 pad[4];
	__u64 packets;  /* 0: the way is empty */
	__u64 bytes;    /* queue: their skb->len; xmit: the length the driver took (NETDEV_TX_OK) */
	__u64 pad2[2];
};

/* devq_pending's `gso` bits. */
enum devq_gso { DEVQ_GSO = 1, DEVQ_GSO_ANOMALY = 2 };

#endif
