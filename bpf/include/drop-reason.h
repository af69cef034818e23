/* SPDX-License-Identifier: GPL-2.0 */
/* skb:kfree_skb's reason, read the same on every kernel that has one. Include after
 * bpf_core_read.h. */
#ifndef EBPFNET_DROP_REASON_H
#define EBPFNET_DROP_REASON_H

/* Whether `reason` is SKB_CONSUMED: a free that is no drop. Kernels before 6.2 have no such
 * value (their kfree_skb is always a drop, consume_skb has its own tracepoint): there the
 * relocation would fail the program's load, so it is only taken where the value exists. */
static __always_inline bool reason_is_consumed(__u32 reason)
{
	return bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	       reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED);
}

/* Whether `reason` is SKB_DROP_REASON_NOT_SPECIFIED (its value moved between kernels). */
static __always_inline bool reason_is_not_specified(__u32 reason)
{
	return bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NOT_SPECIFIED) &&
	       reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NOT_SPECIFIED);
}

#endif
