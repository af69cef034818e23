/* SPDX-License-Identifier: GPL-2.0 */
/* What net:net_dev_start_xmit shows of a packet handed to a driver, shared by offload.bpf.c and
 * vlan-udp.bpf.c: the device (bpf/include/netdev.h), the VLAN tag (hardware-accelerated in skb->vlan_*,
 * or in-band in the frame), the checksum state, GSO fields and the IPv4/IPv6 5-tuple, plus the
 * device, address, port and protocol filters. Every flavour (tp_btf, raw_tp, classic
 * tracepoint) reads the same fields, tp_btf with plain loads; the headers only when asked. Include
 * after vmlinux.h and the BPF helper headers. */
#ifndef EBPFNET_XMIT_H
#define EBPFNET_XMIT_H

#include "field.h"
#include "netdev.h"
#include "ipv4-filter.h"

#define IP_OFFSET_MASK_ 0x1FFF
#define VLAN_VID_MASK_ 0x0FFF

/* How a packet carries its VLAN tag (enum xmit_tagging). */
enum xmit_tagging { XMIT_UNTAGGED = 0, XMIT_TAG_HW = 1, XMIT_TAG_INBAND = 2 };

/* A packet at the driver's door. Addresses in network order (IPv4 in the first 4 bytes), ports
 * in host order, `proto` the ethertype under any in-band tag. */
struct xmit_pkt {
	struct netdev_id dev;
	__u32 len;          /* skb->len: the frame (an in-band tag included), a GSO packet whole */
	__u32 mtu;
	__u32 hard_header_len;
	__u32 gso_type;
	__u16 gso_size;
	__u16 gso_segs;
	__u64 features;     /* dev->features: the offloads the device takes */
	__u16 proto;
	__u16 vlan;         /* VLAN id, when tagged */
	__u8 tagging;       /* enum xmit_tagging */
	__u8 family;        /* 4, 6, or 0: not IP */
	__u8 l4;            /* IP protocol (0 when not IP) */
	__u8 ip_summed;     /* CHECKSUM_NONE, _UNNECESSARY, _COMPLETE, _PARTIAL */
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
};

/* Filters, set before load (0 or empty: any). */
const volatile char targ_dev[NETDEV_NAME_LEN] = {};
const volatile __u32 targ_netns = 0;
const volatile __u32 targ_saddr = 0; /* IPv4, network order: a filter excludes IPv6 */
const volatile __u32 targ_daddr = 0;
const volatile __u16 targ_sport = 0;
const volatile __u16 targ_dport = 0;
const volatile __u8 targ_proto = 0;  /* IP protocol number */

/* The first bytes of a frame: enough for Ethernet, a VLAN tag, an IPv6 header and the ports
 * (an IPv4 header with options reads its ports apart). One probe read instead of one a header. */
#define XMIT_FRAME_BYTES 64
/* Where an Ethernet frame lands in the buffer: its network header 4-aligned, as the verifier
 * wants the loads of the addresses. */
#define XMIT_ETH_AT 2

/* Whether a flow filter is set (.rodata: the verifier keeps one branch). */
#define XMIT_FLOW_FILTERED (targ_proto || targ_sport || targ_dport || targ_saddr || targ_daddr)

/* Addresses and ports of an IPv4 or IPv6 packet whose network header is at `l3` of `buf`, where
 * `src` is at `at` (ports of TCP and UDP only, and not of later IPv4 fragments). */
static __always_inline void read_ip(const unsigned char *buf, __u32 l3, const unsigned char *src, __u32 at, struct xmit_pkt *p)
{
	__u32 l4 = 0;
	__be16 ports[2];

	if (p->proto == ETH_P_IP_) {
		const struct iphdr *ip = (const void *)(buf + l3);

		if (ip->version != 4 || ip->ihl < 5)
			return;
		p->family = 4;
		p->l4 = ip->protocol;
		__builtin_memcpy(p->saddr, &ip->saddr, 4);
		__builtin_memcpy(p->daddr, &ip->daddr, 4);
		if (!(bpf_ntohs(ip->frag_off) & IP_OFFSET_MASK_))
			l4 = l3 + ip->ihl * 4;
	} else if (p->proto == ETH_P_IPV6_) {
		const struct ipv6hdr *ip6 = (const void *)(buf + l3);

		p->family = 6;
		p->l4 = ip6->nexthdr;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
		l4 = l3 + sizeof(*ip6);
	}
	if (!l4 || (p->l4 != IPPROTO_TCP && p->l4 != IPPROTO_UDP))
		return;
	if (l4 <= at + XMIT_FRAME_BYTES - sizeof(ports))
		__builtin_memcpy(ports, buf + l4, sizeof(ports));
	else if (bpf_probe_read_kernel(ports, sizeof(ports), src + (l4 - at)))
		return;
	p->sport = bpf_ntohs(ports[0]);
	p->dport = bpf_ntohs(ports[1]);
}

/* Before 6.2 an accelerated tag's presence is a bit of its own (vlan_present), and moving the
 * tag into the frame (a device without VLAN offload) clears that bit alone: vlan_proto stays. */
struct sk_buff___vlan_present {
	__u8 vlan_present:1;
} __attribute__((preserve_access_index));

/* Whether skb carries an accelerated tag (skb_vlan_tag_present on any kernel). */
static __always_inline bool hw_tag_present(struct sk_buff *skb, bool direct)
{
	struct sk_buff___vlan_present *old = (void *)skb;

	if (bpf_core_field_exists(old->vlan_present))
		return BPF_CORE_READ_BITFIELD_PROBED(old, vlan_present);
	return FIELD(direct, skb->vlan_proto, skb, vlan_proto) != 0;
}

/* The tag (the accelerated one in skb->vlan_*, else one in the Ethernet header), the protocol
 * under it, and the IP header's addresses and ports, from one read of the frame's start. */
static __always_inline void read_frame(struct sk_buff *skb, struct net_device *dev, struct xmit_pkt *p, bool direct)
{
	unsigned char buf[XMIT_ETH_AT + XMIT_FRAME_BYTES] __attribute__((aligned(8)));
	unsigned char *src;

	p->tagging = XMIT_UNTAGGED;
	if (hw_tag_present(skb, direct)) {
		p->tagging = XMIT_TAG_HW;
		p->vlan = FIELD(direct, skb->vlan_tci, skb, vlan_tci) & VLAN_VID_MASK_;
	}
	if (FIELD(direct, dev->type, dev, type) != ARPHRD_ETHER_) {
		/* No Ethernet header: the stack's idea of the protocol and network header. */
		p->proto = bpf_ntohs(FIELD(direct, skb->protocol, skb, protocol));
		src = FIELD(direct, skb->head, skb, head) + FIELD(direct, skb->network_header, skb, network_header);
		if (!bpf_probe_read_kernel(buf, XMIT_FRAME_BYTES, src))
			read_ip(buf, 0, src, 0, p);
		return;
	}
	src = FIELD(direct, skb->data, skb, data);
	if (bpf_probe_read_kernel(buf + XMIT_ETH_AT, XMIT_FRAME_BYTES, src))
		return;
	p->proto = bpf_ntohs(*(__be16 *)(buf + XMIT_ETH_AT + 12));
	if (p->proto != ETH_P_8021Q_ && p->proto != ETH_P_8021AD_) {
		read_ip(buf, XMIT_ETH_AT + ETH_HLEN_, src, XMIT_ETH_AT, p);
		return;
	}
	if (p->tagging == XMIT_UNTAGGED) {
		p->tagging = XMIT_TAG_INBAND;
		p->vlan = bpf_ntohs(*(__be16 *)(buf + XMIT_ETH_AT + ETH_HLEN_)) & VLAN_VID_MASK_;
	}
	p->proto = bpf_ntohs(*(__be16 *)(buf + XMIT_ETH_AT + ETH_HLEN_ + 2));
	read_ip(buf, XMIT_ETH_AT + ETH_HLEN_ + VLAN_HLEN_, src, XMIT_ETH_AT, p);
}

static __always_inline bool flow_matches(const struct xmit_pkt *p)
{
	__u32 s, d;

	if (!filter_matches(targ_proto, p->l4) || !filter_matches(targ_sport, p->sport) ||
	    !filter_matches(targ_dport, p->dport))
		return false;
	if (!targ_saddr && !targ_daddr)
		return true;
	if (p->family != 4)
		return false;
	__builtin_memcpy(&s, p->saddr, 4);
	__builtin_memcpy(&d, p->daddr, 4);
	return filter_matches(targ_saddr, s) && filter_matches(targ_daddr, d);
}

/* gso_size, gso_segs and gso_type of skb_shinfo() (at head + end: end is an offset on 64-bit
 * kernels). */
static __always_inline void read_gso(struct sk_buff *skb, struct xmit_pkt *p, bool direct)
{
	struct skb_shared_info *shinfo;

	shinfo = (void *)(FIELD(direct, skb->head, skb, head) + FIELD(direct, skb->end, skb, end));
	p->gso_size = BPF_CORE_READ(shinfo, gso_size);
	if (p->gso_size) {
		p->gso_segs = BPF_CORE_READ(shinfo, gso_segs);
		p->gso_type = BPF_CORE_READ(shinfo, gso_type);
	}
}

/* Reads the packet `skb` on `dev` into `p`: the device and the filters first; the headers when
 * `frame` (or a flow filter) asks for them; the sizes, offloads and GSO fields. False when its
 * device or flow is filtered out. `direct`: tp_btf (plain loads, field.h). */
static __always_inline bool read_xmit(struct sk_buff *skb, struct net_device *dev, struct xmit_pkt *p, bool frame, bool direct)
{
	if (!skb || !dev)
		return false;
	netdev_id_read(dev, &p->dev, direct);
	if (!netdev_matches(&p->dev, targ_dev, targ_netns))
		return false;
	if (frame || XMIT_FLOW_FILTERED) {
		read_frame(skb, dev, p, direct);
		if (!flow_matches(p))
			return false;
	}
	p->len = FIELD(direct, skb->len, skb, len);
	p->mtu = FIELD(direct, dev->mtu, dev, mtu);
	p->hard_header_len = FIELD(direct, dev->hard_header_len, dev, hard_header_len);
	p->features = FIELD(direct, dev->features, dev, features);
	p->ip_summed = BITFIELD(direct, skb, ip_summed);
	read_gso(skb, p, direct);
	return true;
}

/* The three flavours of one handler `handler(struct sk_buff *, struct net_device *, bool
 * direct)`, named `<prefix>_tp_btf` (loaded by default: plain loads), `<prefix>_raw_tp` and
 * `<prefix>_tracepoint`. */
#define XMIT_PROGRAMS(prefix, handler)                                                        \
	BTF_HANDLERS(prefix, net_dev_start_xmit, handler((struct sk_buff *)skb, (struct net_device *)dev, direct), \
		     const struct sk_buff *skb, const struct net_device *dev)                  \
	SKB_TRACEPOINT(prefix##_tracepoint, net, net_dev_start_xmit, trace_event_raw_net_dev_start_xmit, \
		       handler(skb, BPF_CORE_READ(skb, dev), false))

#endif
