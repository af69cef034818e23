/* SPDX-License-Identifier: GPL-2.0 */
/* Device and skb parsing shared by the queueing probes (qdisc-dequeue.bpf.c, dev-queue.bpf.c):
 * who a device is (ifindex, network namespace, name) and what the seed tools checked of an skb
 * (GSO size without a GSO type). Include after vmlinux.h and the bpf helpers. */
#ifndef EBPFNET_NETDEV_H
#define EBPFNET_NETDEV_H

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

/* The seed tools' anomaly: an skb claiming a GSO size but no GSO type, which drivers and
 * segmentation code mishandle. skb_shinfo() is at head + end (end is an offset on 64-bit). */
static __always_inline bool skb_gso_anomaly(struct sk_buff *skb)
{
	struct skb_shared_info *shinfo;
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u64 end = (__u64)BPF_CORE_READ(skb, end);

	shinfo = (struct skb_shared_info *)(head + end);
	return BPF_CORE_READ(shinfo, gso_size) != 0 && BPF_CORE_READ(shinfo, gso_type) == 0;
}

/* Bumps a per-CPU counter slot of a PERCPU_ARRAY (no atomics needed). */
static __always_inline void netdev_bump(void *totals, __u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(totals, &slot);

	if (n)
		*n += 1;
}

#endif
