/* SPDX-License-Identifier: GPL-2.0 */
/* log2 histogram slots, shared by the probes that aggregate in the kernel (runqlat.bpf.c,
 * netdev.h's queueing probes). */
#ifndef EBPFNET_LOG2_H
#define EBPFNET_LOG2_H

/* floor(log2(v)) for v > 0. */
static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

/* Slot of v in a histogram of `slots` slots: 0 holds 0, slot k (k >= 1) [2^(k-1), 2^k); the
 * last slot also holds everything larger. */
static __always_inline __u32 log2_slot(__u64 v, __u32 slots)
{
	__u32 slot;

	if (v == 0)
		return 0;
	slot = log2_u64(v) + 1;
	return slot < slots ? slot : slots - 1;
}

/* Adds one to slot `slot` of `slots`, a histogram of `n` slots that CPUs share (atomically);
 * false when `slot` is out of range. */
static __always_inline bool slot_add_shared(__u64 *slots, __u32 slot, __u32 n)
{
	barrier_var(slot); /* one register for the check and the index: the verifier sees the bound */
	if (slot >= n)
		return false;
	__sync_fetch_and_add(&slots[slot], 1);
	return true;
}

#endif
