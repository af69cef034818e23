// SPDX-License-Identifier: GPL-2.0
/* drops.kernel: counts skbs freed as drops (skb:kfree_skb with a reason other than
 * SKB_CONSUMED), aggregated in the kernel by {reason, location, ifindex, netns, stack}.
 * Four attach flavours of the same handler, chosen at load by the probe:
 *  - raw_tp: no BTF lookup at attach, so with a cached minimal BTF for the CO-RE reads it
 *    loads in a few ms (tp_btf always parses the whole vmlinux BTF, ~50 ms);
 *  - tp_btf: the typed BTF tracepoint when no minimal BTF is at hand;
 *  - the classic tracepoint: where BTF tracepoints are refused;
 *  - kprobe: kernels whose tracepoint has no drop reason (before 5.17).
 * All but tp_btf start with autoload off ("?" prefix). raw_tp and tp_btf read the reason
 * argument, so the probe uses them only where the tracepoint format has `reason`. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "count.h"
#include "ipv4-filter.h"
#include "drops.h"

#define ETH_P_IP_ 0x0800

/* Filters, set before load. 0 = any. Addresses in network byte order. */
const volatile __u32 targ_ifindex = 0;
const volatile __u32 targ_netns = 0;
const volatile __u32 targ_saddr = 0;
const volatile __u32 targ_daddr = 0;
const volatile __u32 targ_addr = 0; /* matches source or destination (a VM's address) */
const volatile __u8 targ_proto = 0;
const volatile __u16 targ_port = 0; /* host byte order; matches source or destination */
const volatile __u8 want_stacks = 1;
/* Stacks are sampled: a stack walk costs ~10x the rest of the handler, which matters in a
 * drop flood. Per CPU, the first stack_first drops get one, then one in stack_every. */
const volatile __u32 stack_first = 64;
const volatile __u32 stack_every = 64;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DROPS_MAX_ENTRIES);
	__type(key, struct drops_key);
	__type(value, __u64);
} agg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 4096);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, DROPS_MAX_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROPS_TOTAL_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} totals SEC(".maps");

/* Returns the slot's count on this CPU before the bump. */
static __always_inline __u64 bump_total(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&totals, &slot);
	__u64 before;

	if (!n)
		return 0;
	before = *n;
	*n = before + 1; /* per-CPU slot: no atomics needed */
	return before;
}

static __always_inline bool sample_stack(__u64 seen_on_cpu)
{
	if (!want_stacks)
		return false;
	if (seen_on_cpu < stack_first)
		return true;
	return stack_every <= 1 || seen_on_cpu % stack_every == 0;
}

/* IPv4 header fields the filters need; false when the skb is not IPv4 or unreadable. */
static __always_inline bool ipv4_match(struct sk_buff *skb)
{
	struct iphdr ip;
	unsigned char *head;
	__u16 nh, proto;

	if (!targ_saddr && !targ_daddr && !targ_addr && !targ_proto && !targ_port)
		return true;
	proto = BPF_CORE_READ(skb, protocol);
	if (proto != bpf_htons(ETH_P_IP_))
		return false;
	if (!skb_ipv4_header(skb, &ip) || !ipv4_tuple_matches(&ip, targ_saddr, targ_daddr, targ_proto))
		return false;
	if (targ_addr && ip.saddr != targ_addr && ip.daddr != targ_addr)
		return false;
	if (targ_port) {
		__u16 ports[2];

		if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP)
			return false;
		head = BPF_CORE_READ(skb, head);
		nh = BPF_CORE_READ(skb, network_header);
		if (bpf_probe_read_kernel(ports, sizeof(ports), head + nh + ip.ihl * 4))
			return false;
		if (bpf_ntohs(ports[0]) != targ_port && bpf_ntohs(ports[1]) != targ_port)
			return false;
	}
	return true;
}

/* has_reason is a literal at every call: in the legacy kprobe it is false and the compiler
 * drops the SKB_CONSUMED relocation, which kernels without drop reasons could not resolve. */
static __always_inline int handle_skb(void *ctx, struct sk_buff *skb, void *location, __u32 reason, bool has_reason)
{
	struct drops_key key = {};
	struct net_device *dev;

	if (has_reason && reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return 0;
	if (!skb)
		return 0;
	dev = BPF_CORE_READ(skb, dev);
	if (dev) {
		key.ifindex = BPF_CORE_READ(dev, ifindex);
		key.netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	} else {
		key.ifindex = BPF_CORE_READ(skb, skb_iif);
		struct sock *sk = BPF_CORE_READ(skb, sk);
		if (sk)
			key.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	}
	if (targ_ifindex && key.ifindex != targ_ifindex)
		return 0;
	if (targ_netns && key.netns != targ_netns)
		return 0;
	if (!ipv4_match(skb))
		return 0;

	key.location = (__u64)location;
	key.reason = reason;
	key.stack_id = sample_stack(bump_total(DROPS_TOTAL_SEEN)) ? bpf_get_stackid(ctx, &stacks, 0) : -1;

	if (!count_key(&agg, &key))
		bump_total(DROPS_TOTAL_UNKEYED);
	return 0;
}

static __always_inline int handle(void *ctx, struct sk_buff *skb, void *location, __u32 reason)
{
	return handle_skb(ctx, skb, location, reason, true);
}

/* btf_trace_kfree_skb: (void *, struct sk_buff *, void *location, enum skb_drop_reason, struct sock *rx_sk) */
SEC("tp_btf/kfree_skb")
int BPF_PROG(drops_tp_btf, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	return handle(ctx, skb, location, (__u32)reason);
}

/* The same arguments, untyped: only BPF_CORE_READ (probe-read) access, which handle() uses. */
SEC("?raw_tp/kfree_skb")
int BPF_PROG(drops_raw_tp, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	return handle(ctx, skb, location, (__u32)reason);
}

SEC("?tracepoint/skb/kfree_skb")
int drops_tracepoint(struct trace_event_raw_kfree_skb *args)
{
	return handle(args, (struct sk_buff *)args->skbaddr, args->location, (__u32)args->reason);
}

/* Kprobe twin of the tracepoint handlers (5.17+: kfree_skb_reason carries the reason). */
SEC("?kprobe/kfree_skb_reason")
int BPF_KPROBE(drops_kprobe, struct sk_buff *skb, enum skb_drop_reason reason)
{
	__u64 caller = 0;

	BPF_KPROBE_READ_RET_IP(caller, ctx); /* the location is the caller, as the tracepoint's */
	return handle(ctx, skb, (void *)caller, (__u32)reason);
}

/* Kernels before 5.17: the tracepoint has no reason and kfree_skb(skb) frees only drops
 * (consume_skb frees the rest); every drop is counted as reason 0 (NOT_SPECIFIED). */
SEC("?kprobe/kfree_skb")
int BPF_KPROBE(drops_kprobe_legacy, struct sk_buff *skb)
{
	__u64 caller = 0;

	BPF_KPROBE_READ_RET_IP(caller, ctx);
	return handle_skb(ctx, skb, (void *)caller, 0, false);
}

char LICENSE[] SEC("license") = "GPL";
