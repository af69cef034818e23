/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between icmprtt.bpf.c and probes/perf.icmp-rtt/probe.ts (which decodes these layouts). */
#ifndef EBPFNET_ICMPRTT_H
#define EBPFNET_ICMPRTT_H

/* log2 buckets of the RTT in µs, as cpu.runqlat's: slot 0 holds RTTs under 1 µs, slot k
 * (k >= 1) RTTs of [2^(k-1), 2^k) µs; the last slot also holds everything longer. */
#define ICMPRTT_SLOTS 27

/* Echo requests waiting for their reply, and (local, peer, direction) aggregates. */
#define ICMPRTT_PENDING 16384
#define ICMPRTT_PEERS 1024

/* Who sent the echo request (bit i of `targ_dirs`). */
enum icmprtt_dir {
	ICMPRTT_OUTGOING = 0, /* this host pings the peer: request sent, reply received */
	ICMPRTT_INCOMING = 1, /* the peer pings this host: request received, reply sent */
};

/* Slots of the per-CPU `totals` array. */
enum icmprtt_total {
	ICMPRTT_T_SHORT = 0,   /* ICMP echo whose header is not in the skb's linear area: not read */
	ICMPRTT_T_NO_PEER = 1, /* echoes not counted: the `peers` map was full */
	ICMPRTT_T_SLOTS = 2,
};

/* Key of the `pending` map: one echo request until its reply. 16 bytes, no holes. */
struct icmprtt_key {
	__u32 local; /* this host's address, network byte order */
	__u32 peer;  /* the other end's address */
	__u16 id;    /* echo id and sequence, as on the wire */
	__u16 seq;
	__u8 dir;    /* enum icmprtt_dir */
	__u8 pad[3];
};

/* Key of the `peers` map. 12 bytes, no holes. */
struct icmprtt_peer_key {
	__u32 local;
	__u32 peer;
	__u8 dir;
	__u8 pad[3];
};

/* Value of the `peers` map. 272 bytes, no holes. */
struct icmprtt_peer {
	__u64 slots[ICMPRTT_SLOTS]; /* matched echoes per log2 µs bucket of their RTT */
	__u64 requests;             /* echo requests seen */
	__u64 matched;              /* replies matched to a request: the RTTs timed */
	__u64 unmatched;            /* replies with no request waiting (sent before attach, evicted, duplicated) */
	__u64 sum_ns;               /* sum of the RTTs */
	__u64 min_ns;               /* shortest RTT (0: none yet) */
	__u64 max_ns;               /* longest RTT */
	__u64 slow;                 /* RTTs of at least `threshold_ns` (0: not counted) */
};

#endif
