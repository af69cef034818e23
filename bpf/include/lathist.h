/* SPDX-License-Identifier: GPL-2.0 */
/* Log-linear latency histograms, shared by the probes that time packets through stages
 * (perf.vm-latency, perf.host-latency). Include after the BPF helper headers and log2.h. The probe side
 * decodes them with perf.vm-latency's slotBounds / percentileNs / layerStats. */
#ifndef EBPFNET_LATHIST_H
#define EBPFNET_LATHIST_H

/* Histogram slots: log-linear, four slots per power of two of nanoseconds (values 0-3 have a
 * slot each; from 4 on, slot 4*(m-1)+s holds [(4+s) << (m-2), ((5+s) << (m-2)) - 1] where m is
 * the value's highest bit). 160 slots reach 2^41 ns (~37 min); longer waits land in the last. */
#define LATHIST_SLOTS 160

/* The count, sum and max first: one cache line with the low slots, a second for the rest. */
struct lat_hist {
	__u64 count;
	__u64 sum_ns;
	__u64 max_ns;
	__u64 slots[LATHIST_SLOTS];
};

/* Log-linear slot of a latency in ns. */
static __always_inline __u32 lathist_slot(__u64 ns)
{
	__u32 m;

	if (ns < 4)
		return (__u32)ns;
	m = log2_u64(ns);
	return 4 * (m - 1) + (__u32)((ns >> (m - 2)) & 3);
}

/* Adds one latency to a histogram of this CPU's own (no atomics needed). */
static __always_inline void lathist_add(struct lat_hist *h, __u64 ns)
{
	__u32 slot;

	if ((__s64)ns < 0) /* clocks of two CPUs a hair apart */
		ns = 0;
	slot = lathist_slot(ns);
	if (slot >= LATHIST_SLOTS)
		slot = LATHIST_SLOTS - 1;
	/* one register for the check and the index: the verifier sees the bound */
	barrier_var(slot);
	if (slot >= LATHIST_SLOTS)
		return;
	h->slots[slot] += 1;
	h->count += 1;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

#endif
