/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between runqlat.bpf.c and probes/cpu.runqlat/probe.ts (which decodes these layouts). */
#ifndef EBPFNET_RUNQLAT_H
#define EBPFNET_RUNQLAT_H

/* log2 buckets of the wait in µs: slot 0 holds waits under 1 µs, slot k (k >= 1) waits of
 * [2^(k-1), 2^k) µs; the last slot also holds everything longer (2^25 µs is ~34 s). */
#define RUNQLAT_SLOTS 27
#define RUNQLAT_COMM_LEN 16

/* Which threads are measured (`filter_mode`). */
enum runqlat_filter {
	RUNQLAT_ALL = 0,     /* every thread of the host but the idle tasks */
	RUNQLAT_TIDS = 1,    /* the thread ids in the `targets` map */
	RUNQLAT_TGID = 2,    /* every thread of process `targ_tgid` (also the `targets` map,
	                      * filled from /proc, for the classic tracepoint's wakeups) */
};

/* Slots of the per-CPU `totals` array. */
enum runqlat_total {
	RUNQLAT_TOTAL_TIMED = 0,      /* waits timed and aggregated */
	RUNQLAT_TOTAL_NO_START = 1,   /* waits not timed: the `start` map was full */
	RUNQLAT_TOTAL_NO_THREAD = 2,  /* waits timed but not aggregated: `threads` was full */
	RUNQLAT_TOTAL_SLOTS = 3,
};

/* Value of the `threads` hash map (key: __u32 thread id). 280 bytes, no holes. */
struct runqlat_thread {
	__u64 slots[RUNQLAT_SLOTS]; /* waits per log2 µs bucket */
	__u64 count;                /* waits timed */
	__u64 total_ns;             /* sum of the waits */
	__u64 max_ns;               /* longest wait */
	__u64 over_threshold;       /* waits of at least `threshold_ns` (0: not counted) */
	__u64 involuntary;          /* switched out while still runnable (preempted, yielded) */
	__u64 voluntary;            /* switched out to sleep or block */
	char comm[RUNQLAT_COMM_LEN]; /* the thread's name when first seen */
};

#endif
