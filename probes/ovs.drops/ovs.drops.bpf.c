// SPDX-License-Identifier: GPL-2.0
/* ovs.drops on the kernel datapath (openvswitch.ko): where OVS loses packets, counted in the
 * kernel by {hook, ifindex, drop reason, errno, location}.
 *  - kprobe ovs_vport_receive: packets entering the datapath, by the device they came from;
 *    the skb is remembered (`inflight`) so that its drop can be attributed to OVS later;
 *  - kprobe ovs_dp_process_packet: flow-table lookups (recirculations count again);
 *  - kprobe/kretprobe ovs_dp_upcall: misses sent to ovs-vswitchd, and the ones that failed
 *    (netlink queue full, ovs-vswitchd not reading: the packet is lost);
 *  - tp_btf kfree_skb: drops with a reason of the OPENVSWITCH subsystem (kernel 6.4+:
 *    OVS_DROP_LAST_ACTION, OVS_DROP_ACTION_ERROR, ...), and any other drop of an skb that
 *    entered OVS less than a second before (older kernels: OVS drops are NOT_SPECIFIED there);
 *  - tp_btf consume_skb: a remembered skb that was delivered is forgotten.
 * The probe loads this object only where the openvswitch module is loaded; on kernels without
 * kprobes the kprobe programs load but do not attach, and the tracepoints still count. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "count.h"
#include "ipv4-filter.h"
#include "ovs.drops.h"
#include "drop-reason.h"

#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD
#define ETH_HLEN_ 14
/* include/net/dropreason.h: a reason's subsystem is in its upper 16 bits. */
#define DROP_REASON_SUBSYS_SHIFT 16

/* Filters, set before load. 0 = any. Addresses in network byte order. */
const volatile __u32 targ_ifindex = 0;
const volatile __u32 targ_saddr = 0;
const volatile __u32 targ_daddr = 0;
const volatile __u8 targ_proto = 0;
/* IPv6 address filters (all-zero = any); with either set, only IPv6 packets match. */
const volatile __u8 targ_saddr6[16] = {};
const volatile __u8 targ_daddr6[16] = {};
const volatile bool targ_ipv6 = false;
/* A VM's MAC (all-zero: none): with targ_ifindex its port, a packet is the VM's when it entered
 * OVS on that port or is a frame to this MAC (what the VM receives enters on other ports). */
const volatile __u8 targ_vm_mac[6] = {};

HASH_MAP(counts, OVS_MAX_ENTRIES, struct ovs_key, __u64);

LRU_HASH_MAP(inflight, OVS_INFLIGHT_ENTRIES, __u64, struct ovs_inflight);

/* ovs_dp_upcall entry → return, by thread: the device of the packet being sent up. */
HASH_MAP(upcall_dev, 4096, __u32, __u32);

/* Slot 0: events not counted because `counts` was full. */
PERCPU_ARRAY_MAP(unkeyed, 1, __u64);

static __always_inline void count(struct ovs_key *key)
{
	if (!count_key(&counts, key))
		bump_slot(&unkeyed, 0);
}

static __always_inline __u32 skb_ifindex(struct sk_buff *skb)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);

	return dev ? BPF_CORE_READ(dev, ifindex) : BPF_CORE_READ(skb, skb_iif);
}

/* An IPv6 address filter: all-zero matches any address. Bitwise, without a branch per byte
 * (branches would multiply the verifier's states). */
static __always_inline bool addr6_matches(const struct in6_addr *a, const volatile __u8 *want)
{
	__u8 set = 0, diff = 0;

#pragma unroll
	for (int i = 0; i < 16; i++) {
		set |= want[i];
		diff |= a->in6_u.u6_addr8[i] ^ want[i];
	}
	return !set || !diff;
}

/* The IPv6 filters against the header after the Ethernet one (the next header is the protocol: no extension headers are walked). */
static __always_inline bool ipv6_match(unsigned char *l3)
{
	struct ipv6hdr ip6;

	if (bpf_probe_read_kernel(&ip6, sizeof(ip6), l3) || ip6.version != 6)
		return false;
	if (targ_proto && ip6.nexthdr != targ_proto)
		return false;
	return addr6_matches(&ip6.saddr, targ_saddr6) && addr6_matches(&ip6.daddr, targ_daddr6);
}

/* The address and protocol filters, read from the Ethernet header on: OVS sees whole frames. */
static __always_inline bool ipv4_match(struct sk_buff *skb)
{
	struct ethhdr eth;
	struct iphdr ip;
	unsigned char *head;
	__u16 mac;

	if (!targ_saddr && !targ_daddr && !targ_proto && !targ_ipv6)
		return true;
	head = BPF_CORE_READ(skb, head);
	mac = BPF_CORE_READ(skb, mac_header);
	if (mac == (__u16)~0U)
		return false;
	if (bpf_probe_read_kernel(&eth, sizeof(eth), head + mac))
		return false;
	if (targ_ipv6)
		return eth.h_proto == bpf_htons(ETH_P_IPV6_) && ipv6_match(head + mac + ETH_HLEN_);
	if (eth.h_proto != bpf_htons(ETH_P_IP_))
		return false;
	if (bpf_probe_read_kernel(&ip, sizeof(ip), head + mac + ETH_HLEN_))
		return false;
	return ip.version == 4 && ipv4_tuple_matches(&ip, targ_saddr, targ_daddr, targ_proto);
}

/* Whether the frame is to targ_vm_mac (false when none is set). */
static __always_inline bool to_vm_mac(struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 mac = BPF_CORE_READ(skb, mac_header);
	__u8 set = 0, diff = 0, dst[6];

#pragma unroll
	for (int i = 0; i < 6; i++)
		set |= targ_vm_mac[i];
	if (!set || mac == (__u16)~0U || bpf_probe_read_kernel(dst, sizeof(dst), head + mac))
		return false;
#pragma unroll
	for (int i = 0; i < 6; i++)
		diff |= dst[i] ^ targ_vm_mac[i];
	return !diff;
}

static __always_inline bool wanted(struct sk_buff *skb, __u32 ifindex)
{
	if (targ_ifindex && ifindex != targ_ifindex && !to_vm_mac(skb))
		return false;
	return ipv4_match(skb);
}

/* Counts `skb` at `hook` by its device (into `ifindex`) when the filters want it. */
static __always_inline bool count_wanted(struct sk_buff *skb, __u32 hook, __u32 *ifindex)
{
	struct ovs_key key = { .hook = hook };

	if (!skb)
		return false;
	*ifindex = skb_ifindex(skb);
	if (!wanted(skb, *ifindex))
		return false;
	key.ifindex = *ifindex;
	count(&key);
	return true;
}

SEC("kprobe/ovs_vport_receive")
int BPF_KPROBE(ovs_rx_kprobe, void *vport, struct sk_buff *skb)
{
	struct ovs_inflight in = {};
	__u64 addr = (__u64)skb;

	if (!count_wanted(skb, OVS_HOOK_VPORT_RECEIVE, &in.ifindex))
		return 0;
	in.ts_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&inflight, &addr, &in, BPF_ANY);
	return 0;
}

SEC("kprobe/ovs_dp_process_packet")
int BPF_KPROBE(ovs_process_kprobe, struct sk_buff *skb)
{
	__u32 ifindex;

	count_wanted(skb, OVS_HOOK_PROCESS, &ifindex);
	return 0;
}

SEC("kprobe/ovs_dp_upcall")
int BPF_KPROBE(ovs_upcall_kprobe, void *dp, struct sk_buff *skb)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 ifindex;

	if (count_wanted(skb, OVS_HOOK_UPCALL, &ifindex))
		bpf_map_update_elem(&upcall_dev, &tid, &ifindex, BPF_ANY);
	return 0;
}

SEC("kretprobe/ovs_dp_upcall")
int BPF_KRETPROBE(ovs_upcall_kretprobe, int ret)
{
	struct ovs_key key = {};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 *ifindex = bpf_map_lookup_elem(&upcall_dev, &tid);

	if (!ifindex)
		return 0; /* filtered out at entry, or entered before the probe attached */
	key.ifindex = *ifindex;
	bpf_map_delete_elem(&upcall_dev, &tid);
	if (ret >= 0)
		return 0;
	key.hook = OVS_HOOK_UPCALL_ERROR;
	key.err = -ret;
	count(&key);
	return 0;
}

static __always_inline bool is_ovs_reason(__u32 reason)
{
	if (!bpf_core_enum_value_exists(enum skb_drop_reason_subsys, SKB_DROP_REASON_SUBSYS_OPENVSWITCH))
		return false;
	return (reason >> DROP_REASON_SUBSYS_SHIFT) ==
	       bpf_core_enum_value(enum skb_drop_reason_subsys, SKB_DROP_REASON_SUBSYS_OPENVSWITCH);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(ovs_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	struct ovs_key key = {};
	struct ovs_inflight *in;
	__u64 addr = (__u64)skb;
	__u32 r = (__u32)reason;
	bool fresh = false;

	if (!skb)
		return 0;
	in = bpf_map_lookup_elem(&inflight, &addr);
	if (in) {
		fresh = bpf_ktime_get_ns() - in->ts_ns < OVS_INFLIGHT_MAX_NS;
		key.ifindex = in->ifindex;
		bpf_map_delete_elem(&inflight, &addr);
	}
	if (reason_is_consumed(r))
		return 0;
	if (is_ovs_reason(r)) {
		if (!fresh) {
			/* Not seen entering (kprobes missing, or filtered): filter here. */
			key.ifindex = skb_ifindex(skb);
			if (!wanted(skb, key.ifindex))
				return 0;
		}
		key.hook = OVS_HOOK_DROP_REASON;
	} else if (fresh) {
		key.hook = OVS_HOOK_DROP_AFTER_RX;
	} else {
		return 0;
	}
	key.reason = r;
	key.location = (__u64)location;
	count(&key);
	return 0;
}

SEC("tp_btf/consume_skb")
int BPF_PROG(ovs_consume_skb, struct sk_buff *skb)
{
	__u64 addr = (__u64)skb;

	bpf_map_delete_elem(&inflight, &addr);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
