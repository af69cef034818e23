/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between udppath.bpf.c and probes/other.udp-path (which decodes these layouts). */
#ifndef EBPFNET_UDPPATH_H
#define EBPFNET_UDPPATH_H

/* log2 buckets of a hop-to-hop latency in ns (bpf/include/log2.h): slot 0 holds 0, slot k [2^(k-1), 2^k)
 * ns; the last slot also holds everything longer (~1.1 s and up). */
#define UDPPATH_SLOTS 32

#define UDPPATH_PACKETS 8192 /* packets followed at once (skb address -> where last seen) */
#define UDPPATH_HOPS 256 /* distinct hops */
#define UDPPATH_PAIRS (512 + UDPPATH_HOPS) /* consecutive hops, and first hops */
#define UDPPATH_DROPS 128
#define UDPPATH_RING_BYTES (256 * 1024)

/* The hooks, in the order of enum udppath_hook (the probe names them by index). */
enum udppath_hook {
	UDPPATH_QUEUE = 0,   /* net:net_dev_queue: handed to a device's queue (dev_queue_xmit) */
	UDPPATH_DEQUEUE = 1, /* qdisc:qdisc_dequeue: left a qdisc */
	UDPPATH_XMIT = 2,    /* net:net_dev_start_xmit: given to the driver */
	UDPPATH_RECEIVE = 3, /* net:netif_receive_skb: entered a device's receive path */
	UDPPATH_ENQUEUE = 4, /* sock:sk_data_ready: queued on the receiving UDP socket */
	UDPPATH_READ = 5,    /* sock:sock_recv_length: read from the socket by the application */
	UDPPATH_DROP = 6,    /* skb:kfree_skb: freed as a drop */
	UDPPATH_CONSUME = 7, /* skb:consume_skb: freed after use */
	UDPPATH_HOOKS = 8,
};

/* Datagrams a socket may hold queued (unread) while the probe still pairs reads with them. */
#define UDPPATH_QUEUED 64
#define UDPPATH_SOCKETS 64

/* Which way of the flow: as given (src -> dst), or the answer (dst -> src, with `both`). */
enum udppath_way {
	UDPPATH_FORWARD = 0,
	UDPPATH_REVERSE = 1,
};

/* Slots of the per-CPU `totals` array. */
enum udppath_total {
	UDPPATH_T_LOST_EVENTS = 0, /* sample events the ring buffer had no room for */
	UDPPATH_T_NO_ENTRY = 1,    /* hops, pairs or drops not counted: their map was full */
	UDPPATH_T_SHORT = 2,       /* IPv4 packets whose UDP header is not in the linear area: not read */
	UDPPATH_T_QUEUE_FULL = 3,  /* datagrams queued on a socket holding UDPPATH_QUEUED unread: reads not paired */
	UDPPATH_T_SLOTS = 4,
};

/* Where a packet was seen: a hook on a device of a namespace, one way of the flow. 12 bytes, no holes. */
struct udppath_hop {
	__u32 ifindex; /* 0: no device (skb->dev unset) */
	__u32 netns;   /* inode of the device's network namespace (0: no device) */
	__u8 hook;     /* enum udppath_hook */
	__u8 way;      /* enum udppath_way */
	__u8 pad[2];
};

/* The `from` of a pair whose `to` is a packet's first hop (hook UDPPATH_START, the rest 0). */
#define UDPPATH_START UDPPATH_HOOKS

/* Key of the `pairs` map: consecutive hops of one packet, or UDPPATH_START and its first hop.
 * A hop's counts are the sums over the pairs that end there: one map line per hop, not two. */
struct udppath_pair {
	struct udppath_hop from;
	struct udppath_hop to;
};

/* Value of the `pairs` map: packets that passed `from` then `to`, the time between the two
 * (none from UDPPATH_START), and what the hop `to` counts of them. The scalars first: one line. */
struct udppath_pair_stats {
	__u64 count;
	__u64 sum_ns;
	__u64 max_ns;
	__u64 step_sum; /* sum over the packets of how many hops each had passed before `to` */
	__u64 first_ns; /* when the first of them was seen at `to` */
	__u64 slots[UDPPATH_SLOTS];
};

/* Pairs each CPU counts on its own (`recent`, slots by a hash of the pair) before they move to
 * `pairs`: the hot pairs of a flow cost no hash lookup and no atomics. */
#define UDPPATH_RECENT 16

/* An entry of `recent`: one pair counted on one CPU since it was last moved into `pairs`
 * (count 0: none). 384 bytes, 6 cache lines: the key, the guard and the counts of a hop in the
 * first. */
struct udppath_recent {
	struct udppath_pair key;
	__u32 busy;  /* a program is counting here: another one nested on this CPU counts in `pairs` */
	__u32 pad;
	struct udppath_pair_stats v;
	__u8 pad_to_line[56];
};

/* Key of the `drops` map (value: a u64 count). 24 bytes, no holes. */
struct udppath_drop {
	struct udppath_hop at;
	__u32 reason; /* enum skb_drop_reason */
	__u64 location;
};

/* Value of the `packets` map: one packet (skb) followed from hop to hop. 40 bytes. An ended
 * packet keeps its entry with `ns` 0 (no packet): the next skb at its address takes it over in
 * place, instead of a delete and an insert per packet. */
struct udppath_packet {
	struct udppath_hop last;
	__u32 step;     /* hops passed before `last` */
	__u64 ns;       /* when it passed `last`; 0: ended */
	__u64 first_ns; /* when it passed its first hop: the packet's identity in the samples */
	__u32 sampled;  /* 1: its hops go to the ring buffer */
	__u32 pad;
};

/* A slot of the `packets` table: the skb key of the packet it follows, and the packet. One
 * cache line. */
struct udppath_slot {
	__u64 skb;
	struct udppath_packet p;
	__u8 pad[16];
};

/* Ring buffer event: one hop of a sampled packet. 48 bytes. */
struct udppath_event {
	__u64 ns;
	__u64 first_ns; /* the packet's identity */
	__u64 location; /* drops: where freed */
	struct udppath_hop hop;
	__u32 step;
	__u32 reason;   /* drops: enum skb_drop_reason */
	__u32 len;      /* skb->len at this hop */
};

/* An entry of `recent_drops`: the last drop key counted on one CPU and its count since it was
 * last moved into `drops` (0: none). One cache line. */
struct udppath_recent_drop {
	struct udppath_drop key;
	__u32 busy;  /* as udppath_recent's */
	__u32 pad;
	__u64 count;
	__u8 pad_to_line[24];
};

/* One datagram queued on a followed socket, oldest first (UDP sockets are read in order). */
struct udppath_queued {
	__u64 ns;       /* when queued; 0: a datagram of another flow (its read is skipped) */
	__u64 first_ns;
	__u32 step;
	__u32 sampled;
};

/* Value of the `sockets` map (key: the socket's address): its queue of datagrams. */
struct udppath_sockq {
	struct udppath_hop at; /* where the flow's datagrams were queued */
	__u32 head;            /* datagrams read so far (index: head % UDPPATH_QUEUED) */
	__u32 tail;            /* datagrams queued so far */
	__u32 pad;
	struct udppath_queued q[UDPPATH_QUEUED];
};

#endif
