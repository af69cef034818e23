/* SPDX-License-Identifier: GPL-2.0 */
/* Device and skb parsing shared by the queueing probes (qdisc-dequeue.bpf.c, dev-queue.bpf.c):
 * who a device is (ifindex, network namespace, name) and what the seed tools checked of an skb
 * (GSO size without a GSO type), its L3/L4 class. Include after vmlinux.h, bpf_helpers.h,
 * bpf_core_read.h and bpf_endian.h. */
#ifndef EBPFNET_NETDEV_H
#define EBPFNET_NETDEV_H

#include "count.h"
#include "field.h"
#include "hooks.h"

#define NETDEV_NAME_LEN 16

/* A device as the probes key it (24 bytes, no holes). The name comes from the kernel, so a
 * device inside another namespace is named without looking it up there. */
struct netdev_id {
	__u32 ifindex;
	__u32 netns;                 /* inode of the device's network namespace */
	char name[NETDEV_NAME_LEN];
};

static __always_inline void netdev_id_of(struct net_device *dev, struct netdev_id *id)
{
	id->ifindex = BPF_CORE_READ(dev, ifindex);
	id->netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	BPF_CORE_READ_STR_INTO(&id->name, dev, name);
}

/* 8 bytes of a name with what follows its NUL cleared: a renamed device may keep bytes of its
 * old name there (strscpy does not pad), and the name is part of a key. The lowest byte the
 * zero-byte test flags is the first NUL (only bytes above a NUL can be flagged falsely). */
static __always_inline __u64 name_word_before_nul(__u64 w, bool *nul)
{
	__u64 z = (w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL;

	*nul = z != 0;
	return z ? w & (((z & -z) >> 7) - 1) : w;
}

/* netdev_id_of, and in a tp_btf program (`direct`, field.h) with plain loads: ~30 ns less than
 * its probe reads. */
static __always_inline void netdev_id_read(struct net_device *dev, struct netdev_id *id, bool direct)
{
	__u64 *name = (__u64 *)id->name;
	__u64 w[2];
	bool nul;

	if (!direct) {
		netdev_id_of(dev, id);
		return;
	}
	id->ifindex = dev->ifindex;
	id->netns = dev->nd_net.net->ns.inum;
	__builtin_memcpy(w, dev->name, sizeof(w));
	name[0] = name_word_before_nul(w[0], &nul);
	name[1] = nul ? 0 : name_word_before_nul(w[1], &nul);
}

/* A classic tracepoint's __data_loc string: its offset (low 16 bits) is from the start of the
 * event. The event is ctx memory, read as kernel memory. */
static __always_inline void data_loc_str(void *event, __u32 loc, char *dst, __u32 size)
{
	bpf_probe_read_kernel_str(dst, size, event + (loc & 0xffff));
}

/* Whether `id` passes the device filters: a name (empty: any) and a namespace inode (0: any). */
static __always_inline bool netdev_matches(const struct netdev_id *id, const volatile char *targ_name, __u32 targ_netns)
{
	if (targ_netns && id->netns != targ_netns)
		return false;
	if (!targ_name[0])
		return true;
	for (int i = 0; i < NETDEV_NAME_LEN; i++) {
		if (id->name[i] != targ_name[i])
			return false;
		if (!targ_name[i])
			break;
	}
	return true;
}

/* The device of `skb` into `id`; false when there is none or the filters leave it out. */
static __always_inline bool skb_netdev(struct sk_buff *skb, struct netdev_id *id, const volatile char *targ_name, __u32 targ_netns)
{
	struct net_device *dev;

	if (!skb)
		return false;
	dev = BPF_CORE_READ(skb, dev);
	if (!dev)
		return false;
	netdev_id_of(dev, id);
	return netdev_matches(id, targ_name, targ_netns);
}

/* The device of qdisc `q` into `id`; false when there is none. */
static __always_inline bool qdisc_netdev(struct Qdisc *q, struct netdev_id *id)
{
	struct net_device *dev;

	if (!q)
		return false;
	dev = BPF_CORE_READ(q, dev_queue, dev);
	if (!dev)
		return false;
	netdev_id_of(dev, id);
	return true;
}

/* net_dev_xmit in all three flavours (`<prefix>_tp_btf`, `_raw_tp`, `_tracepoint`), each
 * handing `on_xmit(struct netdev_id *, int rc, __u32 len)` the device (read with plain loads in
 * tp_btf; only its name on the classic tracepoint), the driver's return code and the length
 * sent. */
#define NETDEV_XMIT_HANDLERS(prefix, on_xmit)						\
	static __always_inline int prefix##_dev(struct net_device *dev, int rc, __u32 len, bool direct) \
	{										\
		struct netdev_id id = {};						\
											\
		if (!dev)								\
			return 0;							\
		netdev_id_read(dev, &id, direct);					\
		return on_xmit(&id, rc, len);						\
	}										\
	BTF_HANDLERS(prefix, net_dev_xmit, prefix##_dev(dev, rc, skb_len, direct),	\
		     struct sk_buff *skb, int rc, struct net_device *dev, unsigned int skb_len) \
	SEC("?tracepoint/net/net_dev_xmit")						\
	int prefix##_tracepoint(struct trace_event_raw_net_dev_xmit *args)		\
	{										\
		struct netdev_id id = {};						\
											\
		data_loc_str(args, args->__data_loc_name, id.name, sizeof(id.name));	\
		return on_xmit(&id, args->rc, args->len);				\
	}

#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD
#define ETH_P_ARP_ 0x0806
#define IPPROTO_ICMPV6_ 58
#define IPV6_NEXTHDR_OFFSET 6 /* fixed by the IPv6 header's layout */
#define ARPHRD_ETHER_ 1
#define ETH_HLEN_ 14
#define VLAN_HLEN_ 4
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define MAC_HEADER_UNSET 0xffff

/* The ARP body for Ethernet/IPv4 (RFC 826). */
struct arp_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
} __attribute__((packed));

/* L3 and L4 classes of a packet (the split the queueing probes report). */
enum netdev_l3 { NETDEV_L3_IPV4 = 0, NETDEV_L3_IPV6 = 1, NETDEV_L3_ARP = 2, NETDEV_L3_OTHER = 3, NETDEV_L3_SLOTS = 4 };
enum netdev_l4 { NETDEV_L4_TCP = 0, NETDEV_L4_UDP = 1, NETDEV_L4_ICMP = 2, NETDEV_L4_OTHER = 3, NETDEV_L4_NONE = 4, NETDEV_L4_SLOTS = 5 };

/* The IP protocol right after the IPv4 header or the fixed IPv6 header (extension headers
 * count as other), read at the skb's network header. */
static __always_inline enum netdev_l4 l4_class(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP: return NETDEV_L4_TCP;
	case IPPROTO_UDP: return NETDEV_L4_UDP;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6_: return NETDEV_L4_ICMP;
	default: return NETDEV_L4_OTHER;
	}
}

static __always_inline void skb_classes(struct sk_buff *skb, enum netdev_l3 *l3, enum netdev_l4 *l4, bool direct)
{
	__u16 proto = bpf_ntohs(FIELD(direct, skb->protocol, skb, protocol));
	unsigned char *nh = FIELD(direct, skb->head, skb, head) + FIELD(direct, skb->network_header, skb, network_header);
	__u8 next;

	*l4 = NETDEV_L4_NONE;
	if (proto == ETH_P_IP_) {
		struct iphdr ip;

		*l3 = NETDEV_L3_IPV4;
		if (!bpf_probe_read_kernel(&ip, sizeof(ip), nh) && ip.version == 4)
			*l4 = l4_class(ip.protocol);
	} else if (proto == ETH_P_IPV6_) {
		*l3 = NETDEV_L3_IPV6;
		if (!bpf_probe_read_kernel(&next, sizeof(next), nh + IPV6_NEXTHDR_OFFSET))
			*l4 = l4_class(next);
	} else {
		*l3 = proto == ETH_P_ARP_ ? NETDEV_L3_ARP : NETDEV_L3_OTHER;
	}
}

/* Whether the skb claims GSO (a super-packet the device or the stack segments later), and the
 * seed tools' anomaly: a GSO size but no GSO type, which drivers and segmentation code
 * mishandle. skb_shinfo() is at head + end (end is an offset on 64-bit). */
static __always_inline void skb_gso(struct sk_buff *skb, bool *gso, bool *anomaly, bool direct)
{
	struct skb_shared_info *shinfo;
	unsigned char *head = FIELD(direct, skb->head, skb, head);
	__u64 end = (__u64)FIELD(direct, skb->end, skb, end);
	__u16 size;

	shinfo = (struct skb_shared_info *)(head + end);
	size = BPF_CORE_READ(shinfo, gso_size);
	*gso = size != 0;
	*anomaly = size != 0 && BPF_CORE_READ(shinfo, gso_type) == 0;
}


static __always_inline bool skb_gso_anomaly(struct sk_buff *skb)
{
	bool gso, anomaly;

	skb_gso(skb, &gso, &anomaly, false);
	return anomaly;
}

#endif
