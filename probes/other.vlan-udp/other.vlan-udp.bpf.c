// SPDX-License-Identifier: GPL-2.0
/* other.vlan-udp: UDP packets handed to each driver (net:net_dev_start_xmit), counted in the
 * kernel per device, VLAN id and 5-tuple: packets, bytes, first and last time, and how the tag
 * was carried (skb->vlan_tci for hardware-accelerated tagging, or an 802.1Q/802.1ad header in
 * the frame). Untagged UDP is kept under VLAN_UDP_UNTAGGED whatever the VLAN filter.
 *
 * Three attach flavours of one handler (bpf/include/xmit.h), chosen at load by the probe. */
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

static __always_inline int on_xmit(struct sk_buff *skb)
{
	struct vlan_udp_value *v, init = {};
	struct vlan_udp_key k = {};
	struct xmit_pkt p = {};
	__u64 now;

	if (!read_xmit(skb, &p) || p.l4 != IPPROTO_UDP)
		return 0;
	if (targ_vlan_set && p.tagging != XMIT_UNTAGGED && p.vlan != targ_vlan)
		return 0;
	bump_slot(&totals, VLAN_UDP_TOTAL_SEEN);
	k.dev = p.dev;
	__builtin_memcpy(k.saddr, p.saddr, sizeof(k.saddr));
	__builtin_memcpy(k.daddr, p.daddr, sizeof(k.daddr));
	k.sport = p.sport;
	k.dport = p.dport;
	k.family = p.family;
	k.vlan = p.tagging == XMIT_UNTAGGED ? VLAN_UDP_UNTAGGED : p.vlan;
	now = bpf_ktime_get_ns();
	init.first_ns = now;
	v = lookup_or_init(&flows, &k, &init, &totals, VLAN_UDP_TOTAL_UNKEYED);
	if (!v)
		return 0;
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, p.len);
	if (p.tagging == XMIT_TAG_HW)
		__sync_fetch_and_add(&v->hw_tagged, 1);
	else if (p.tagging == XMIT_TAG_INBAND)
		__sync_fetch_and_add(&v->inband, 1);
	if (now > v->last_ns)
		v->last_ns = now; /* racy between CPUs: off by one packet's time at most */
	return 0;
}

XMIT_PROGRAMS(vlan_udp_xmit, on_xmit)

char LICENSE[] SEC("license") = "GPL";
