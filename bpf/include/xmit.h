/* SPDX-License-Identifier: GPL-2.0 */
/* What net:net_dev_start_xmit shows of a packet handed to a driver, shared by offload.bpf.c and
 * vlan-udp.bpf.c: the device (bpf/include/netdev.h), the VLAN tag (hardware-accelerated in skb->vlan_*,
 * or in-band in the frame), the checksum state, GSO fields and the IPv4/IPv6 5-tuple, plus the
 * device, address, port and protocol filters. Every flavour (raw_tp, tp_btf, classic
 * tracepoint) reads the skb the same way. Include after vmlinux.h and the BPF helper headers. */
#ifndef EBPFNET_XMIT_H
#define EBPFNET_XMIT_H

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

/* The tag of an skb: the accelerated one (skb->vlan_all non-zero: skb_vlan_tag_present), else
 * one in the Ethernet header; `l3` is where the network header starts in the frame. */
static __always_inline void read_vlan(struct sk_buff *skb, struct xmit_pkt *p, unsigned char **l3)
{
	unsigned char *data = BPF_CORE_READ(skb, data);
	__be16 hdr[2];
	__be16 type;

	p->tagging = XMIT_UNTAGGED;
	if (BPF_CORE_READ(skb, vlan_proto)) {
		p->tagging = XMIT_TAG_HW;
		p->vlan = BPF_CORE_READ(skb, vlan_tci) & VLAN_VID_MASK_;
	}
	if (BPF_CORE_READ(skb, dev, type) != ARPHRD_ETHER_ || bpf_probe_read_kernel(&type, sizeof(type), data + 12)) {
		/* No Ethernet header: the stack's idea of the protocol and network header. */
		p->proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
		*l3 = BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, network_header);
		return;
	}
	*l3 = data + ETH_HLEN_;
	p->proto = bpf_ntohs(type);
	if ((p->proto == ETH_P_8021Q_ || p->proto == ETH_P_8021AD_) && !bpf_probe_read_kernel(hdr, sizeof(hdr), data + ETH_HLEN_)) {
		if (p->tagging == XMIT_UNTAGGED) {
			p->tagging = XMIT_TAG_INBAND;
			p->vlan = bpf_ntohs(hdr[0]) & VLAN_VID_MASK_;
		}
		p->proto = bpf_ntohs(hdr[1]);
		*l3 = data + ETH_HLEN_ + VLAN_HLEN_;
	}
}

/* Addresses and ports of an IPv4 or IPv6 packet at `l3` (ports of TCP and UDP only, and not of
 * later IPv4 fragments). */
static __always_inline void read_ip(unsigned char *l3, struct xmit_pkt *p)
{
	unsigned char *l4 = 0;
	__be16 ports[2];

	if (p->proto == ETH_P_IP_) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), l3) || ip.version != 4 || ip.ihl < 5)
			return;
		p->family = 4;
		p->l4 = ip.protocol;
		__builtin_memcpy(p->saddr, &ip.saddr, 4);
		__builtin_memcpy(p->daddr, &ip.daddr, 4);
		if (!(bpf_ntohs(ip.frag_off) & IP_OFFSET_MASK_))
			l4 = l3 + ip.ihl * 4;
	} else if (p->proto == ETH_P_IPV6_) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), l3))
			return;
		p->family = 6;
		p->l4 = ip6.nexthdr;
		__builtin_memcpy(p->saddr, &ip6.saddr, 16);
		__builtin_memcpy(p->daddr, &ip6.daddr, 16);
		l4 = l3 + sizeof(ip6);
	}
	if (l4 && (p->l4 == IPPROTO_TCP || p->l4 == IPPROTO_UDP) && !bpf_probe_read_kernel(ports, sizeof(ports), l4)) {
		p->sport = bpf_ntohs(ports[0]);
		p->dport = bpf_ntohs(ports[1]);
	}
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

/* Reads the packet `skb` into `p`; false when its device or flow is filtered out. */
static __always_inline bool read_xmit(struct sk_buff *skb, struct xmit_pkt *p)
{
	struct skb_shared_info *shinfo;
	struct net_device *dev;
	unsigned char *l3 = 0;

	if (!skb)
		return false;
	dev = BPF_CORE_READ(skb, dev);
	if (!dev)
		return false;
	netdev_id_of(dev, &p->dev);
	if (!netdev_matches(&p->dev, targ_dev, targ_netns))
		return false;
	read_vlan(skb, p, &l3);
	read_ip(l3, p);
	if (!flow_matches(p))
		return false;
	p->len = BPF_CORE_READ(skb, len);
	p->mtu = BPF_CORE_READ(dev, mtu);
	p->hard_header_len = BPF_CORE_READ(dev, hard_header_len);
	p->features = BPF_CORE_READ(dev, features);
	p->ip_summed = BPF_CORE_READ_BITFIELD_PROBED(skb, ip_summed);
	/* skb_shinfo(): at head + end (end is an offset on 64-bit kernels). */
	shinfo = (struct skb_shared_info *)(BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, end));
	p->gso_size = BPF_CORE_READ(shinfo, gso_size);
	p->gso_segs = BPF_CORE_READ(shinfo, gso_segs);
	p->gso_type = BPF_CORE_READ(shinfo, gso_type);
	return true;
}

/* The three flavours of one handler `on_xmit(struct sk_buff *)`, named `<prefix>_raw_tp`,
 * `<prefix>_tp_btf` and `<prefix>_tracepoint` (only tp_btf loads by default). */
#define XMIT_PROGRAMS(prefix, handler)                                                       \
	SEC("tp_btf/net_dev_start_xmit")                                                     \
	int BPF_PROG(prefix##_tp_btf, const struct sk_buff *skb)                             \
	{                                                                                    \
		return handler((struct sk_buff *)skb);                                       \
	}                                                                                    \
	SEC("?raw_tp/net_dev_start_xmit")                                                    \
	int BPF_PROG(prefix##_raw_tp, const struct sk_buff *skb)                             \
	{                                                                                    \
		return handler((struct sk_buff *)skb);                                       \
	}                                                                                    \
	SEC("?tracepoint/net/net_dev_start_xmit")                                            \
	int prefix##_tracepoint(struct trace_event_raw_net_dev_start_xmit *args)             \
	{                                                                                    \
		return handler((struct sk_buff *)args->skbaddr);                             \
	}

#endif
