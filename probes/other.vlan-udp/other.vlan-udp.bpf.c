// SPDX-License-Identifier: GPL-2.0
/* other.vlan-udp: UDP packets handed to each driver (net:net_dev_start_xmit), counted in the
 * kernel per device, VLAN id and 5-tuple: packets, bytes, first and last time, and how the tag
 * was carried (skb->vlan_tci for hardware-accelerated tagging, or an 802.1Q/802.1ad header in
 * the frame). Untagged UDP is kept under VLAN_UDP_UNTAGGED whatever the VLAN filter.
 *
 * Three attach flavours of one handler (bpf/include/xmit.h), chosen at load by the probe. A
 * packet costs two cache lines of this CPU's (`pending`, bpf/include/pending.h) while its flow
 * keeps its way; a way's counts go to `flows` when another flow takes it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "xmit.h"
#include "other.vlan-udp.h"

/* Only this VLAN id (and untagged packets), when targ_vlan_set. */
const volatile __u8 targ_vlan_set = 0;
const volatile __u16 targ_vlan = 0;

HASH_MAP(flows, VLAN_UDP_MAX_FLOWS, struct vlan_udp_key, struct vlan_udp_value);

TOTALS_MAP(VLAN_UDP_TOTAL_SLOTS);

PENDING_MAP(pending, struct vlan_udp_pending);

/* Moves the counts of way `w` into its flow's entry (or counts them unkeyed). */
static __always_inline void flush_way(const struct vlan_udp_pending *w)
{
	struct vlan_udp_value *v, init = { .first_ns = w->first_ns };
	__u64 n = w->packets;

	v = way_entry(&flows, &w->key, &init, &totals, VLAN_UDP_TOTAL_SEEN, VLAN_UDP_TOTAL_UNKEYED, n);
	if (!v)
		return;
	__sync_fetch_and_add(&v->packets, n);
	__sync_fetch_and_add(&v->bytes, w->bytes);
	if (w->tagging == XMIT_TAG_HW)
		__sync_fetch_and_add(&v->hw_tagged, n);
	else if (w->tagging == XMIT_TAG_INBAND)
		__sync_fetch_and_add(&v->inband, n);
	/* Racy between CPUs: off by one packet's time at most. */
	if (w->first_ns < v->first_ns)
		v->first_ns = w->first_ns;
	if (w->last_ns > v->last_ns)
		v->last_ns = w->last_ns;
}

static __always_inline int on_xmit(struct sk_buff *skb, struct net_device *dev, bool direct)
{
	struct vlan_udp_pending *w;
	struct vlan_udp_key k = {};
	struct xmit_pkt p = {};
	__u64 now;

	if (!read_xmit(skb, dev, &p, true, direct) || p.l4 != IPPROTO_UDP)
		return 0;
	if (targ_vlan_set && p.tagging != XMIT_UNTAGGED && p.vlan != targ_vlan)
		return 0;
	k.dev = p.dev;
	__builtin_memcpy(k.saddr, p.saddr, sizeof(k.saddr));
	__builtin_memcpy(k.daddr, p.daddr, sizeof(k.daddr));
	k.sport = p.sport;
	k.dport = p.dport;
	k.family = p.family;
	k.vlan = p.tagging == XMIT_UNTAGGED ? VLAN_UDP_UNTAGGED : p.vlan;
	now = bpf_ktime_get_ns();
	/* This CPU's way of the flow: its counts move to `flows` when another flow takes it. */
	w = pending_way(&pending, p.dev.ifindex ^ p.sport ^ p.dport ^ k.vlan);
	if (!w) {
		struct vlan_udp_pending one = { .key = k, .packets = 1, .bytes = p.len, .first_ns = now, .last_ns = now, .tagging = p.tagging };

		flush_way(&one);
		return 0;
	}
	if (!w->packets || w->tagging != p.tagging || !same_words(&w->key, &k, sizeof(k))) {
		if (w->packets)
			flush_way(w);
		w->key = k;
		w->tagging = p.tagging;
		w->packets = 0;
		w->bytes = 0;
		w->first_ns = now;
	}
	w->packets++;
	w->bytes += p.len;
	w->last_ns = now;
	return 0;
}

XMIT_PROGRAMS(vlan_udp_xmit, on_xmit)

char LICENSE[] SEC("license") = "GPL";
