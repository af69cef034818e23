// SPDX-License-Identifier: GPL-2.0
/* drops.kernel: counts skbs freed as drops (skb:kfree_skb with a reason other than
 * SKB_CONSUMED), aggregated in the kernel by {reason, location, ifindex, netns, stack}.
 * Four attach flavours of the same handler, chosen at load by the probe:
 *  - tp_btf: the typed BTF tracepoint, whose skb fields are plain loads (a probe read costs
 *    ~8 ns, and the handler reads five); libbpf parses the whole vmlinux BTF for it (~8 ms);
 *  - raw_tp: the same arguments untyped, read with probe reads, against a cached minimal BTF;
 *  - the classic tracepoint: where BTF tracepoints are refused;
 *  - kprobe: kernels whose tracepoint has no drop reason (before 5.17).
 * All but tp_btf start with autoload off ("?" prefix). raw_tp and tp_btf read the reason
 * argument, so the probe uses them only where the tracepoint format has `reason`.
 * A drop costs one cache line of this program's own when it has the key of this CPU's last
 * drop (`pending`), a hash lookup in `agg` otherwise: see count_drop(). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "count.h"
#include "field.h"
#include "drop-reason.h"
#include "ip-filter.h"
#include "drops.kernel.h"

#define PACKET_BROADCAST_ 1
#define PACKET_MULTICAST_ 2
#define PACKET_OTHERHOST_ 3
#define IFF_UP_ 1

/* Filters, set before load. 0 = any. Addresses in network byte order. */
const volatile __u32 targ_ifindex = 0;
const volatile __u32 targ_netns = 0;
/* The address filters' family: 4 (IPv4 addresses, or only protocol/port), 6 (IPv6
 * addresses), 0 (no address, protocol or port filter). */
const volatile __u8 targ_family = 0;
const volatile __u32 targ_saddr = 0;
const volatile __u32 targ_daddr = 0;
const volatile __u32 targ_addr = 0; /* matches source or destination (a VM's address) */
const volatile __u32 targ_saddr6[4] = {};
const volatile __u32 targ_daddr6[4] = {};
const volatile __u32 targ_addr6[4] = {};
const volatile __u8 targ_proto = 0; /* IPv4 protocol / IPv6 next header */
const volatile __u16 targ_port = 0; /* host byte order; matches source or destination */
const volatile __u8 want_stacks = 1;
/* Stacks are sampled: a stack walk costs ~5 us, fifty times the rest of the handler, which
 * a drop flood would pay on every drop. Per CPU, the first stack_first drops get one, then one
 * in stack_every (the probe sets both). */
const volatile __u32 stack_first = 64;
const volatile __u32 stack_every = 1024;

/* Before 5.17 a drop is named by its place, and a helper that only frees what its caller dropped
 * (kfree_skb_list: a qdisc's drops) is no place: drops it frees always get a stack, whose next
 * frame names them. Address ranges of those helpers, set by the probe from kallsyms. */
#define DROPS_HELPERS 4
const volatile __u64 helper_lo[DROPS_HELPERS] = {};
const volatile __u64 helper_hi[DROPS_HELPERS] = {};

static __always_inline bool freed_by_helper(__u64 caller)
{
#pragma unroll
	for (int i = 0; i < DROPS_HELPERS; i++)
		if (caller >= helper_lo[i] && caller < helper_hi[i])
			return true;
	return false;
}

/* icmpv6_rcv frees ND and MLD messages it handled with kfree_skb ("the status quo"): every one
 * before 5.17, and some with NOT_SPECIFIED after (6.1 does so for a neighbour advertisement),
 * where later kernels consume them: a neighbour's every solicitation would count as a drop.
 * Those frees are no drops (a malformed ND message freed there the same way cannot be told
 * apart: the kernel counts it in Icmp6InErrors). Its address range, set by the probe from kallsyms. */
const volatile __u64 icmp6_rcv_lo = 0;
const volatile __u64 icmp6_rcv_hi = 0;

#define ICMP6_MLD_QUERY 130
#define ICMP6_REDIRECT 137
#define ICMP6_MLD2_REPORT 143

static __always_inline bool icmp6_status_quo(struct sk_buff *skb, __u64 caller)
{
	unsigned char *head;
	__u16 th;
	__u8 type;

	if (caller < icmp6_rcv_lo || caller >= icmp6_rcv_hi)
		return false;
	/* icmpv6_rcv's skb: its transport header is the ICMPv6 header, past any extension header
	 * (MLD's hop-by-hop router alert). */
	head = BPF_CORE_READ(skb, head);
	th = BPF_CORE_READ(skb, transport_header);
	if (bpf_probe_read_kernel(&type, sizeof(type), head + th))
		return false;
	return (type >= ICMP6_MLD_QUERY && type <= ICMP6_REDIRECT) || type == ICMP6_MLD2_REPORT;
}

/* Where the OVS kernel datapath outputs a frame (do_output, often inlined in
 * do_execute_actions): it frees there what it floods to a port with no carrier. Set by the
 * probe from kallsyms while openvswitch.ko is loaded. */
#define DROPS_OVS_OUTPUTS 2
const volatile __u64 ovs_out_lo[DROPS_OVS_OUTPUTS] = {};
const volatile __u64 ovs_out_hi[DROPS_OVS_OUTPUTS] = {};

/* A broadcast or multicast frame the kernel datapath freed on its way out: its copy for a port
 * that is down (a hypervisor's integration bridge's own port, a stopped VM's tap). It reached
 * every port that is up: no loss. A unicast frame to a port that is down is. */
static __always_inline bool ovs_flood_to_down_port(struct sk_buff *skb, __u64 location)
{
	bool at_output = false;
	unsigned char *head;
	__u16 mac;
	__u8 dst0;

#pragma unroll
	for (int i = 0; i < DROPS_OVS_OUTPUTS; i++)
		if (location >= ovs_out_lo[i] && location < ovs_out_hi[i])
			at_output = true;
	if (!at_output)
		return false;
	head = BPF_CORE_READ(skb, head);
	mac = BPF_CORE_READ(skb, mac_header);
	if (mac == (__u16)~0U || bpf_probe_read_kernel(&dst0, sizeof(dst0), head + mac))
		return false;
	return dst0 & 1; /* the destination's group bit */
}

/* The VM scope: when on, a drop counts only when it is the VM's packet (drops.h limits). */
const volatile __u8 scope_on = 0;
const volatile __u32 scope_netns = 0; /* vm_ifindex are devices of this namespace (ebpfnet's) */
const volatile __u32 n_vm_devs = 0;
const volatile __u32 vm_ifindex[DROPS_MAX_VM_DEVS] = {};
const volatile __u32 n_vm_macs = 0;
const volatile __u64 vm_mac[DROPS_MAX_VM_MACS] = {}; /* the 6 bytes in memory order, as a little-endian load reads them */
const volatile __u32 n_vm_ip4 = 0;
const volatile __u32 vm_ip4[DROPS_MAX_VM_IPS] = {};
const volatile __u32 n_vm_ip6 = 0;
const volatile __u32 vm_ip6[DROPS_MAX_VM_IPS][4] = {};

HASH_MAP(agg, DROPS_MAX_ENTRIES, struct drops_key, __u64);

STACK_MAP(stacks, 4096, DROPS_MAX_STACK_DEPTH);

TOTALS_MAP(DROPS_TOTAL_SLOTS);

/* An entry per CPU, a cache line each (a CPU past DROPS_PENDING_CPUS counts straight in `agg`). */
LINES_MAP(pending, DROPS_PENDING_CPUS, struct drops_pending);


/* Adds `by` to a slot of this CPU's totals; returns its count before. */
static __always_inline __u64 bump_total(__u32 slot, __u64 by)
{
	__u64 *n = bpf_map_lookup_elem(&totals, &slot);
	__u64 before;

	if (!n)
		return 0;
	before = *n;
	*n = before + by; /* per-CPU slot: no atomics needed */
	return before;
}

/* Adds `n` drops of `key` to `agg`; a full map counts them unkeyed. */
static __always_inline void add_to_agg(const struct drops_key *key, __u64 n)
{
	if (!count_key_by(&agg, key, n))
		bump_total(DROPS_TOTAL_UNKEYED, n);
}

static __always_inline bool same_key(const struct drops_key *a, const struct drops_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* Counts one drop of `key` in this CPU's pending entry `p`: the same key as its last drop costs
 * an increment; another one first moves the pending count into `agg`. The program does not
 * run again on this CPU before it returns (BPF's recursion guard), so `p` needs no atomics. */
static __always_inline void count_pending(struct drops_pending *p, const struct drops_key *key)
{
	if (p->count && same_key(&p->key, key)) {
		p->count++;
		return;
	}
	if (p->count)
		add_to_agg(&p->key, p->count);
	p->seq++;
	asm volatile("" ::: "memory"); /* the odd seq is stored before the key changes */
	p->key = *key;
	p->count = 1;
	asm volatile("" ::: "memory");
	p->seq++;
}

static __always_inline bool sample_stack(__u64 seen_on_cpu)
{
	if (!want_stacks)
		return false;
	if (seen_on_cpu < stack_first)
		return true;
	return stack_every <= 1 || seen_on_cpu % stack_every == 0;
}

/* Whether `match` (an expression of slot i) holds for one of the first `n` of `max` slots. The
 * scope's sets are small read-only arrays: the verifier knows their counts and drops the unused
 * slots, so an unset kind costs one branch. */
#define ANY_SLOT(max, n, match)                          \
	({                                               \
		bool hit_ = false;                        \
		for (int i = 0; i < (max); i++) {        \
			if (i >= (n))                    \
				break;                   \
			if (match) {                     \
				hit_ = true;             \
				break;                   \
			}                                \
		}                                        \
		hit_;                                    \
	})

/* Arguments are evaluated once per slot: pass values, not reads. */
#define vm_dev(ifindex) ANY_SLOT(DROPS_MAX_VM_DEVS, n_vm_devs, vm_ifindex[i] == (ifindex))
#define vm_mac_of(mac) ANY_SLOT(DROPS_MAX_VM_MACS, n_vm_macs, vm_mac[i] == (mac))
#define vm_ip4_of(addr) ANY_SLOT(DROPS_MAX_VM_IPS, n_vm_ip4, vm_ip4[i] == (addr))
#define vm_ip6_of(addr) ANY_SLOT(DROPS_MAX_VM_IPS, n_vm_ip6, in6_equal((addr), vm_ip6[i]))

/* How the drop is the VM's (a DROPS_BY_* bit), 0 when it is not. Cheapest test first: the
 * device (already read), the input device, the Ethernet addresses, the IP addresses. */
static __always_inline __u32 vm_scope(struct sk_buff *skb, struct skb_hdrs *h, __u32 ifindex, __u32 netns, bool direct, bool hdr_direct)
{
	if (n_vm_devs && netns == scope_netns) {
		if (vm_dev(ifindex))
			return DROPS_BY_DEV;
		__u32 iif = FIELD(direct, skb->skb_iif, skb, skb_iif);

		if (iif != ifindex && vm_dev(iif))
			return DROPS_BY_DEV;
	}
	if (n_vm_macs && h->mac != SKB_HEADER_UNSET && h->nh >= h->mac + ETH_HLEN_) {
		struct { __u64 dst_src; __u32 src_tail; } eth = {};
		bool read = true;

		if (hdr_direct) {
			const unsigned char *m = h->head + h->mac;

			eth.dst_src = *(const __u64 *)m;
			eth.src_tail = *(const __u32 *)(m + 8);
		} else {
			read = !bpf_probe_read_kernel(&eth, 12, h->head + h->mac);
		}
		__u64 dst = eth.dst_src & 0xffffffffffffULL;
		__u64 src = (eth.dst_src >> 48) | ((__u64)eth.src_tail << 16);

		if (read && (vm_mac_of(dst) || vm_mac_of(src)))
			return DROPS_BY_MAC;
	}
	if (n_vm_ip4 || n_vm_ip6) {
		skb_hdrs_l3(h, hdr_direct);
		if (h->family == 4 && (vm_ip4_of(h->v4.saddr) || vm_ip4_of(h->v4.daddr)))
			return DROPS_BY_IP;
		if (h->family == 6 && (vm_ip6_of(&h->v6.saddr) || vm_ip6_of(&h->v6.daddr)))
			return DROPS_BY_IP;
	}
	return 0;
}

/* The address, protocol and port filters; true when none is set. hdr_direct: see skb_hdrs_l3(). */
static __always_inline bool ip_filters_match(struct skb_hdrs *h, bool hdr_direct)
{
	if (!targ_family)
		return true;
	skb_hdrs_l3(h, hdr_direct);
	if (h->family != targ_family)
		return false;
	if (targ_family == 4) {
		if (!ipv4_tuple_matches(&h->v4, targ_saddr, targ_daddr, targ_proto))
			return false;
		if (targ_addr && h->v4.saddr != targ_addr && h->v4.daddr != targ_addr)
			return false;
	} else {
		if (!in6_is_any(targ_saddr6) && !in6_equal(&h->v6.saddr, targ_saddr6))
			return false;
		if (!in6_is_any(targ_daddr6) && !in6_equal(&h->v6.daddr, targ_daddr6))
			return false;
		if (!in6_is_any(targ_addr6) && !in6_equal(&h->v6.saddr, targ_addr6) && !in6_equal(&h->v6.daddr, targ_addr6))
			return false;
		if (targ_proto && h->v6.nexthdr != targ_proto)
			return false;
	}
	if (targ_port) {
		__u16 ports[2];

		if (!skb_hdrs_ports(h, ports))
			return false;
		if (bpf_ntohs(ports[0]) != targ_port && bpf_ntohs(ports[1]) != targ_port)
			return false;
	}
	return true;
}

/* A copy of a frame the host's own stack discards on its way in, not the frame's loss: a
 * broadcast, multicast or other-host frame (pkt_type) received on this device (skb_iif is the
 * device: not being forwarded out of it) where the device is no bridge or OVS-datapath port
 * (their frames go to the switch, not up the stack). A Linux bridge's local copy (skb->dev is
 * the bridge) and every frame on a port of a userspace switch that reads it with AF_PACKET
 * (OVS netdev) are such copies, and so are the kernel datapath's flood copies to a bridge's own
 * port that is down; a bridge-port ingress rule, a bridge forward rule, a qdisc or
 * a full tun ring on the way out are not. */
static __always_inline bool host_copy(struct sk_buff *skb, struct net_device *dev, __u32 ifindex, bool direct)
{
	__u64 ports = 0, internal = 0, flags;
	__u8 pkt_type;

	if (!dev)
		return false;
	if (bpf_core_enum_value_exists(enum netdev_priv_flags, IFF_BRIDGE_PORT))
		ports |= bpf_core_enum_value(enum netdev_priv_flags, IFF_BRIDGE_PORT);
	if (bpf_core_enum_value_exists(enum netdev_priv_flags, IFF_OVS_DATAPATH))
		ports |= bpf_core_enum_value(enum netdev_priv_flags, IFF_OVS_DATAPATH);
	if (bpf_core_enum_value_exists(enum netdev_priv_flags, IFF_OPENVSWITCH))
		internal = bpf_core_enum_value(enum netdev_priv_flags, IFF_OPENVSWITCH);
	flags = BITFIELD(direct, dev, priv_flags);
	/* The kernel datapath's copy to a bridge's own (internal) port that is down, as a
	 * hypervisor's integration bridge usually is: internal_dev_recv frees it, nobody listens
	 * there. (A copy the datapath executed for ovs-vswitchd, the first of a flow, is a new skb:
	 * neither its pkt_type nor its input device say where it came from.) */
	if (internal && (flags & internal) && !(flags & ports) && !(FIELD(direct, dev->flags, dev, flags) & IFF_UP_))
		return true;
	pkt_type = BITFIELD(direct, skb, pkt_type);
	if (pkt_type != PACKET_BROADCAST_ && pkt_type != PACKET_MULTICAST_ && pkt_type != PACKET_OTHERHOST_)
		return false;
	if (FIELD(direct, skb->skb_iif, skb, skb_iif) != ifindex)
		return false;
	return !(flags & ports);
}

/* has_reason and direct are literals at every call: in the legacy kprobe has_reason is false
 * and the compiler drops the SKB_CONSUMED relocation, which kernels without drop reasons could
 * not resolve; direct (tp_btf only) turns the probe reads into plain loads. */
static __always_inline int handle_skb(void *ctx, struct sk_buff *skb, void *location, __u32 reason, bool has_reason, bool direct, bool hdr_direct, bool whole_stack)
{
	struct drops_key key = {};
	struct drops_pending *p;
	struct net_device *dev;
	struct skb_hdrs h;
	__u32 cpu;
	__u64 seen;

	if (has_reason && reason_is_consumed(reason))
		return 0;
	if (!skb)
		return 0;
	if ((!has_reason || reason_is_not_specified(reason)) && icmp6_status_quo(skb, (__u64)location))
		return 0;
	dev = FIELD(direct, skb->dev, skb, dev);
	if (dev) {
		key.ifindex = FIELD(direct, dev->ifindex, dev, ifindex);
		key.netns = FIELD(direct, dev->nd_net.net->ns.inum, dev, nd_net.net, ns.inum);
	} else {
		key.ifindex = FIELD(direct, skb->skb_iif, skb, skb_iif);
		struct sock *sk = FIELD(direct, skb->sk, skb, sk);
		if (sk)
			key.netns = FIELD(direct, sk->__sk_common.skc_net.net->ns.inum, sk, __sk_common.skc_net.net, ns.inum);
	}
	if (targ_ifindex && key.ifindex != targ_ifindex)
		return 0;
	if (targ_netns && key.netns != targ_netns)
		return 0;
	if (scope_on || targ_family) {
		skb_hdrs_init(skb, &h, direct);
		if (scope_on) {
			key.flags = vm_scope(skb, &h, key.ifindex, key.netns, direct, hdr_direct);
			if (!key.flags)
				return 0;
		}
		if (!ip_filters_match(&h, hdr_direct))
			return 0;
	}
	if (host_copy(skb, dev, key.ifindex, direct) || ovs_flood_to_down_port(skb, (__u64)location))
		key.flags |= DROPS_HOST_COPY;
	if (!has_reason && dev && BITFIELD(direct, skb, pkt_type) == PACKET_OTHERHOST_)
		key.flags |= DROPS_OTHERHOST;

	key.location = (__u64)location;
	key.reason = reason;
	cpu = bpf_get_smp_processor_id();
	p = bpf_map_lookup_elem(&pending, &cpu);
	seen = p ? p->seen++ : bump_total(DROPS_TOTAL_SEEN, 1);
	key.stack_id = whole_stack || sample_stack(seen) ? bpf_get_stackid(ctx, &stacks, 0) : -1;
	/* A sampled drop's key is its stack's: it would push out the key of the drops around it. */
	if (p && key.stack_id < 0)
		count_pending(p, &key);
	else
		add_to_agg(&key, 1);
	return 0;
}

static __always_inline int handle(void *ctx, struct sk_buff *skb, void *location, __u32 reason)
{
	return handle_skb(ctx, skb, location, reason, true, false, false, false);
}

/* btf_trace_kfree_skb: (void *, struct sk_buff *, void *location, enum skb_drop_reason, struct sock *rx_sk) */
SEC("tp_btf/kfree_skb")
int BPF_PROG(drops_tp_btf, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	return handle_skb(ctx, skb, location, (__u32)reason, true, true, false, false);
}

/* tp_btf again, reading the packet's headers (the VM scope's MACs and addresses, the address
 * filters) with plain loads too: ~14 ns less a scoped drop than probe reads. Verifiers that see
 * skb->head as a number, not memory, refuse it; the probe then loads drops_tp_btf. */
SEC("?tp_btf/kfree_skb")
int BPF_PROG(drops_tp_btf_hdr, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	return handle_skb(ctx, skb, location, (__u32)reason, true, true, true, false);
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
	return handle_skb(ctx, skb, (void *)caller, 0, false, false, false, freed_by_helper(caller));
}

char LICENSE[] SEC("license") = "GPL";
