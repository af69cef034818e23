/* SPDX-License-Identifier: GPL-2.0 */
/* The IPv4 and IPv6 headers of an skb, read once for every filter of a program that needs
 * them (drops: the VM scope and the address filters). Include after vmlinux.h and the BPF
 * helper headers. */
#ifndef EBPFNET_IP_FILTER_H
#define EBPFNET_IP_FILTER_H

#include "ipv4-filter.h"

#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD
#define ETH_HLEN_ 14
#define SKB_HEADER_UNSET 0xffff /* a mac_header/network_header offset not set yet */

/* An skb's header offsets and, once read, its L3 header. */
struct skb_hdrs {
	unsigned char *head;
	__u16 proto;       /* skb->protocol, network byte order */
	__u16 nh;          /* network header offset from head */
	__u16 mac;         /* MAC header offset from head, SKB_HEADER_UNSET when not set */
	__u8 family;       /* 4, 6, or 0 (neither, or unreadable); valid once l3_read */
	__u8 l3_read;
	union {
		struct iphdr v4;
		struct ipv6hdr v6;
	};
};

/* Reads head and the header offsets. `direct` (a literal): the skb is a BTF-typed argument
 * (tp_btf), read with plain loads. Otherwise probe reads: protocol, transport_header,
 * network_header and mac_header are four adjacent __u16 on every kernel we know, one read
 * then, else three. The offsets are CO-RE constants, so the verifier keeps only one branch. */
static __always_inline void skb_hdrs_init(struct sk_buff *skb, struct skb_hdrs *h, bool direct)
{
	__u32 proto_off = bpf_core_field_offset(struct sk_buff, protocol);

	h->l3_read = 0;
	h->family = 0;
	if (direct) {
		h->head = skb->head;
		h->proto = skb->protocol;
		h->nh = skb->network_header;
		h->mac = skb->mac_header;
		return;
	}
	h->head = BPF_CORE_READ(skb, head);
	if (bpf_core_field_size(struct sk_buff, protocol) == 2 && bpf_core_field_size(struct sk_buff, mac_header) == 2 &&
	    bpf_core_field_offset(struct sk_buff, network_header) == proto_off + 4 &&
	    bpf_core_field_offset(struct sk_buff, mac_header) == proto_off + 6) {
		__u16 w[4] = {};

		bpf_probe_read_kernel(w, sizeof(w), (void *)skb + proto_off);
		h->proto = w[0];
		h->nh = w[2];
		h->mac = w[3];
	} else {
		h->proto = BPF_CORE_READ(skb, protocol);
		h->nh = BPF_CORE_READ(skb, network_header);
		h->mac = BPF_CORE_READ(skb, mac_header);
	}
}

/* Reads the IPv4 or IPv6 header at the network header (once). `direct` (a literal): with plain
 * loads through skb->head, which only newer verifiers accept (untrusted read-only memory: a load
 * that faults reads zeros, and a version of 0 is no header); the caller keeps a program without
 * them to fall back to. Otherwise probe reads. */
static __always_inline void skb_hdrs_l3(struct skb_hdrs *h, bool direct)
{
	if (h->l3_read)
		return;
	h->l3_read = 1;
	if (h->proto == bpf_htons(ETH_P_IP_)) {
		if (direct)
			h->v4 = *(const struct iphdr *)(h->head + h->nh);
		else if (bpf_probe_read_kernel(&h->v4, sizeof(h->v4), h->head + h->nh))
			return;
		if (h->v4.version == 4)
			h->family = 4;
	} else if (h->proto == bpf_htons(ETH_P_IPV6_)) {
		if (direct)
			h->v6 = *(const struct ipv6hdr *)(h->head + h->nh);
		else if (bpf_probe_read_kernel(&h->v6, sizeof(h->v6), h->head + h->nh))
			return;
		if (h->v6.version == 6)
			h->family = 6;
	}
}

/* An IPv6 address (network order, as 4 words in memory order) equals `want`. */
static __always_inline bool in6_equal(const struct in6_addr *a, const volatile __u32 *want)
{
	return a->in6_u.u6_addr32[0] == want[0] && a->in6_u.u6_addr32[1] == want[1] &&
	       a->in6_u.u6_addr32[2] == want[2] && a->in6_u.u6_addr32[3] == want[3];
}

static __always_inline bool in6_is_any(const volatile __u32 *a)
{
	return !(a[0] | a[1] | a[2] | a[3]);
}

/* Source and destination TCP/UDP ports (network order) of the L3 header read; false when the
 * packet is neither, or (IPv6) has extension headers before them. */
static __always_inline bool skb_hdrs_ports(struct skb_hdrs *h, __u16 ports[2])
{
	__u32 off;

	if (h->family == 4) {
		if (h->v4.protocol != IPPROTO_TCP && h->v4.protocol != IPPROTO_UDP)
			return false;
		off = h->nh + h->v4.ihl * 4;
	} else if (h->family == 6) {
		if (h->v6.nexthdr != IPPROTO_TCP && h->v6.nexthdr != IPPROTO_UDP)
			return false;
		off = h->nh + sizeof(struct ipv6hdr);
	} else {
		return false;
	}
	return !bpf_probe_read_kernel(ports, 2 * sizeof(__u16), h->head + off);
}

#endif
