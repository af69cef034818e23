// SPDX-License-Identifier: GPL-2.0
/* other.arp: abnormal ARP. Every ARP frame a device receives (net:netif_receive_skb) is
 * classified (request, reply, gratuitous, probe, unsolicited reply...) and counted in the
 * kernel per {device, netns, sender IP, sender MAC}; the ARP requests the host sends
 * (net:net_dev_start_xmit) are remembered per {netns, asked IP}, which tells a reply that
 * answers a request from one nobody asked for.
 *
 * Three attach flavours of the same two handlers, one chosen at load by the probe: tp_btf
 * (the skb's fields plain loads: they run for every frame), raw_tp (with a cached minimal BTF
 * it loads in a few ms), and the classic tracepoints. tp_btf programs load by default, the
 * others only when asked ("?"). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "netdev.h"
#include "field.h"
#include "other.arp.h"

#define CHECKSUM_PARTIAL_ 3

/* Filters and settings, set before load. 0 = any. */
const volatile __u32 targ_ifindex = 0;
const volatile __u32 targ_netns = 0;
const volatile __u32 targ_ip = 0; /* sender or target IP, network order */
/* A reply within this long of a request for its sender IP answers it. */
const volatile __u64 reply_window_ns = 3000000000ULL;

HASH_MAP(senders, ARP_MAX_SENDERS, struct arp_key, struct arp_counts);

/* LRU: old requests make room for new ones, the map is never full. */
LRU_HASH_MAP(asked, ARP_MAX_ASKED, struct arp_asked_key, __u64);

/* Slot 0: when the session started (ktime ns), written by the probe before attach. Replies
 * earlier than a reply window after it may answer a request sent before the programs ran. */
ARRAY_MAP(session, 1, __u64);

TOTALS_MAP(ARP_TOTAL_SLOTS);


static __always_inline bool ip_eq(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

static __always_inline bool ip_zero(const __u8 *a)
{
	return (a[0] | a[1] | a[2] | a[3]) == 0;
}

static __always_inline bool mac_eq(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

/* Reads an Ethernet/IPv4 ARP body at `at`; false when it is not one. */
static __always_inline bool read_arp(struct arp_ipv4 *a, const void *at)
{
	if (bpf_probe_read_kernel(a, sizeof(*a), at))
		return false;
	return a->htype == bpf_htons(ARPHRD_ETHER_) && a->ptype == bpf_htons(ETH_P_IP_) && a->hlen == 6 && a->plen == 4;
}

static __always_inline bool ip_matches(const struct arp_ipv4 *a)
{
	__u32 spa, tpa;

	if (!targ_ip)
		return true;
	__builtin_memcpy(&spa, a->spa, 4);
	__builtin_memcpy(&tpa, a->tpa, 4);
	return spa == targ_ip || tpa == targ_ip;
}

/* Whether a reply from `ip` answers a request sent within the reply window; *early when no
 * request was seen but the session is too young to say none was sent. */
static __always_inline bool was_asked(__u32 netns, const __u8 *ip, __u64 now, bool *early)
{
	struct arp_asked_key k = { .netns = netns };
	__u32 zero = 0;
	__u64 *t, *start;

	__builtin_memcpy(k.ip, ip, 4);
	t = bpf_map_lookup_elem(&asked, &k);
	if (t && now - *t <= reply_window_ns)
		return true;
	start = bpf_map_lookup_elem(&session, &zero);
	*early = !start || !*start || now < *start + reply_window_ns;
	return false;
}

static __always_inline struct arp_counts *counts_of(struct arp_key *key)
{
	struct arp_counts init = {};

	return lookup_or_init(&senders, key, &init, &totals, ARP_TOTAL_UNKEYED);
}

/* An abnormal frame (gratuitous, unsolicited): counted in its second for the storm peak.
 * Racy between CPUs receiving from one sender at once: a peak may be off by a few. */
static __always_inline void count_in_second(struct arp_counts *v, __u64 now)
{
	__u64 sec = now / 1000000000ULL;

	if (v->cur_sec != sec) {
		v->cur_sec = sec;
		v->cur_count = 0;
	}
	v->cur_count += 1;
	if (v->cur_count > v->peak_per_sec)
		v->peak_per_sec = v->cur_count;
}

/* Most frames are not ARP: skb->protocol is checked first, a plain load when `direct`. */
static __always_inline int on_receive(struct sk_buff *skb, bool direct)
{
	struct arp_key key = {};
	struct arp_counts *v;
	struct net_device *dev;
	struct arp_ipv4 a;
	__u8 eth_src[6];
	bool early = false;
	__u16 mh;
	__u64 now;

	if (FIELD(direct, skb->protocol, skb, protocol) != bpf_htons(ETH_P_ARP_))
		return 0;
	dev = FIELD(direct, skb->dev, skb, dev);
	if (!dev || FIELD(direct, dev->type, dev, type) != ARPHRD_ETHER_)
		return 0;
	key.ifindex = FIELD(direct, dev->ifindex, dev, ifindex);
	key.netns = FIELD(direct, dev->nd_net.net->ns.inum, dev, nd_net.net, ns.inum);
	if (targ_ifindex && key.ifindex != targ_ifindex)
		return 0;
	if (targ_netns && key.netns != targ_netns)
		return 0;
	/* At this hook the Ethernet header is pulled: data is the ARP body, the network header
	 * may not be set yet; the MAC header is. */
	if (!read_arp(&a, FIELD(direct, skb->data, skb, data)) || !ip_matches(&a))
		return 0;
	bump_slot(&totals, ARP_TOTAL_SEEN);
	__builtin_memcpy(key.sip, a.spa, 4);
	__builtin_memcpy(key.smac, a.sha, 6);
	v = counts_of(&key);
	if (!v)
		return 0;

	now = bpf_ktime_get_ns();
	if (a.op == bpf_htons(1)) {
		if (ip_zero(a.spa))
			__sync_fetch_and_add(&v->probes, 1);
		else if (ip_eq(a.spa, a.tpa)) {
			__sync_fetch_and_add(&v->gratuitous, 1);
			count_in_second(v, now);
		} else
			__sync_fetch_and_add(&v->requests, 1);
	} else if (a.op == bpf_htons(2)) {
		if (ip_eq(a.spa, a.tpa)) {
			__sync_fetch_and_add(&v->gratuitous, 1);
			count_in_second(v, now);
		} else if (was_asked(key.netns, a.spa, now, &early))
			__sync_fetch_and_add(&v->replies, 1);
		else if (early)
			__sync_fetch_and_add(&v->unverified, 1);
		else {
			__sync_fetch_and_add(&v->unsolicited, 1);
			count_in_second(v, now);
		}
	} else
		__sync_fetch_and_add(&v->other, 1);

	mh = FIELD(direct, skb->mac_header, skb, mac_header);
	if (mh != MAC_HEADER_UNSET && !bpf_probe_read_kernel(eth_src, 6, FIELD(direct, skb->head, skb, head) + mh + 6) && !mac_eq(eth_src, a.sha)) {
		__sync_fetch_and_add(&v->mac_mismatch, 1);
		__builtin_memcpy(v->eth_src, eth_src, 6);
	}
	return 0;
}

/* At the driver's xmit the data starts with the Ethernet header (Ethernet devices only). Its
 * type is the first probe read: most frames are not ARP. In tp_btf a frame whose L4 checksum is
 * left to the device (CHECKSUM_PARTIAL: TCP or UDP) returns before it: ARP has no checksum. */
static __always_inline int on_xmit(struct sk_buff *skb, bool direct)
{
	struct arp_asked_key k = {};
	struct net_device *dev;
	struct arp_ipv4 a;
	unsigned char *data;
	__be16 proto;
	__u64 now;

	if (direct && BITFIELD(direct, skb, ip_summed) == CHECKSUM_PARTIAL_)
		return 0;
	dev = FIELD(direct, skb->dev, skb, dev);
	if (!dev || FIELD(direct, dev->type, dev, type) != ARPHRD_ETHER_)
		return 0;
	data = FIELD(direct, skb->data, skb, data);
	if (bpf_probe_read_kernel(&proto, sizeof(proto), data + 12) || proto != bpf_htons(ETH_P_ARP_))
		return 0;
	k.netns = FIELD(direct, dev->nd_net.net->ns.inum, dev, nd_net.net, ns.inum);
	if (targ_netns && k.netns != targ_netns)
		return 0;
	if (!read_arp(&a, data + ETH_HLEN_) || a.op != bpf_htons(1) || ip_eq(a.spa, a.tpa) || !ip_matches(&a))
		return 0;
	__builtin_memcpy(k.ip, a.tpa, 4);
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&asked, &k, &now, BPF_ANY);
	bump_slot(&totals, ARP_TOTAL_ASKED);
	return 0;
}

BTF_HANDLERS(arp_receive, netif_receive_skb, on_receive(skb, direct), struct sk_buff *skb)
BTF_HANDLERS(arp_xmit, net_dev_start_xmit, on_xmit((struct sk_buff *)skb, direct), const struct sk_buff *skb)
SKB_TRACEPOINT(arp_receive_tracepoint, net, netif_receive_skb, trace_event_raw_net_dev_template, on_receive(skb, false))
SKB_TRACEPOINT(arp_xmit_tracepoint, net, net_dev_start_xmit, trace_event_raw_net_dev_start_xmit, on_xmit(skb, false))

char LICENSE[] SEC("license") = "GPL";
