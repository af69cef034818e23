// SPDX-License-Identifier: GPL-2.0
/* net.defrag: counts the skbs the kernel frees with a reassembly drop reason (FRAG_REASM_TIMEOUT,
 * FRAG_TOO_FAR, DUP_FRAG: the numbers are this kernel's, passed in by the probe), aggregated in
 * the kernel by {source, destination, reason, family, protocol}. The reason is compared first,
 * so every other drop costs one comparison loop.
 * No device or namespace in the key: a fragment queued for reassembly shares skb->dev with its
 * rb-tree node, so the device pointer of a purged fragment is not a device.
 * Three attach flavours of the same handler, as drops.bpf.c: raw_tp (with a cached minimal BTF),
 * tp_btf, the classic tracepoint; all but tp_btf start with autoload off. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "count.h"
#include "ipv4-filter.h"
#include "net.defrag.h"

#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD

/* Set before load: the reasons to count, and the IPv4 filters. */
const volatile __u32 targ_reasons[DEFRAG_MAX_REASONS] = {};
const volatile __u32 n_reasons = 0;
DEFRAG_IPV4_FILTERS;

COUNTS_MAP(agg, struct defrag_key, DEFRAG_MAX_ENTRIES);

TOTALS_MAP(DEFRAG_TOTAL_SLOTS);


static __always_inline bool wanted_reason(__u32 reason)
{
	for (int i = 0; i < DEFRAG_MAX_REASONS; i++) {
		if (i >= n_reasons)
			return false;
		if (targ_reasons[i] == reason)
			return true;
	}
	return false;
}

/* The key's family, addresses (`len` bytes, a constant once inlined) and protocol. */
static __always_inline void key_header(struct defrag_key *key, __u8 family, const void *saddr, const void *daddr,
				       __u32 len, __u8 protocol)
{
	__builtin_memcpy(key->saddr, saddr, len);
	__builtin_memcpy(key->daddr, daddr, len);
	key->family = family;
	key->protocol = protocol;
}

/* Fills the addresses and protocol of the key from the network header; false when filtered out. */
static __always_inline bool read_header(struct sk_buff *skb, struct defrag_key *key)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 proto = BPF_CORE_READ(skb, protocol);

	if (proto == bpf_htons(ETH_P_IP_)) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh) || ip.version != 4)
			return !targ_saddr && !targ_daddr && !targ_proto;
		if (!ipv4_tuple_matches(&ip, targ_saddr, targ_daddr, targ_proto))
			return false;
		key_header(key, 4, &ip.saddr, &ip.daddr, sizeof(ip.saddr), ip.protocol);
		return true;
	}
	/* IPv4 filters exclude every other family. */
	if (targ_saddr || targ_daddr || targ_proto)
		return false;
	if (proto == bpf_htons(ETH_P_IPV6_)) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh) || ip6.version != 6)
			return true;
		key_header(key, 6, &ip6.saddr, &ip6.daddr, sizeof(ip6.saddr), ip6.nexthdr);
	}
	return true;
}

static __always_inline int handle(struct sk_buff *skb, __u32 reason)
{
	struct defrag_key key = {};

	if (!wanted_reason(reason) || !skb)
		return 0;
	if (!read_header(skb, &key))
		return 0;
	key.reason = reason;
	bump_slot(&totals, DEFRAG_TOTAL_SEEN);
	if (!count_key(&agg, &key))
		bump_slot(&totals, DEFRAG_TOTAL_UNKEYED);
	return 0;
}

/* btf_trace_kfree_skb: (void *, struct sk_buff *, void *location, enum skb_drop_reason, struct sock *rx_sk) */
SEC("tp_btf/kfree_skb")
int BPF_PROG(defrag_tp_btf, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	return handle(skb, (__u32)reason);
}

SEC("?raw_tp/kfree_skb")
int BPF_PROG(defrag_raw_tp, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	return handle(skb, (__u32)reason);
}

SEC("?tracepoint/skb/kfree_skb")
int defrag_tracepoint(struct trace_event_raw_kfree_skb *args)
{
	return handle((struct sk_buff *)args->skbaddr, (__u32)args->reason);
}

char LICENSE[] SEC("license") = "GPL";
