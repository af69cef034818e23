/* SPDX-License-Identifier: GPL-2.0 */
/* IPv4 address/protocol filters of the skb programs, shared by drops, ovs and conntrack.
 * Include after vmlinux.h and the BPF helper headers. */
#ifndef EBPFNET_IPV4_FILTER_H
#define EBPFNET_IPV4_FILTER_H

/* Reads the IPv4 header at the skb's network header: false when unreadable or not version 4. */
static __always_inline bool skb_ipv4_header(struct sk_buff *skb, struct iphdr *ip)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);

	if (bpf_probe_read_kernel(ip, sizeof(*ip), head + nh))
		return false;
	return ip->version == 4;
}

/* Whether `value` passes the filter `want` (0 = any). */
static __always_inline bool filter_matches(__u32 want, __u32 value)
{
	return !want || value == want;
}

/* The source, destination and protocol filters (0 = any) against an IPv4 header. */
static __always_inline bool ipv4_tuple_matches(const struct iphdr *ip, __u32 saddr, __u32 daddr, __u8 proto)
{
	return filter_matches(saddr, ip->saddr) && filter_matches(daddr, ip->daddr) &&
	       filter_matches(proto, ip->protocol);
}

#endif
