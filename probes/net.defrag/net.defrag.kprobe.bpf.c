// SPDX-License-Identifier: GPL-2.0
/* net.defrag's reassembly queues, seen from the IPv4 reassembly code itself (kprobes, so only
 * where the kernel has them):
 *  - kprobe ip_defrag: every fragment handed to reassembly, counted by {namespace, source,
 *    destination, protocol, defrag user} (who asked: local delivery, conntrack and its zone,
 *    IPVS, AF_PACKET, macvlan): the reassembly attempts per source;
 *  - kprobe ip_expire: a queue whose timer fired before its datagram was complete (a timeout),
 *    kept per queue {namespace, source, destination, IP ID, protocol, user} with what it held:
 *    bytes received, the datagram's length when the last fragment came, which ends came.
 * Addresses, protocol: IPv4 filters set before load, as defrag.bpf.c's. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "count.h"
#include "net.defrag.h"

/* include/net/inet_frag.h */
#define INET_FRAG_FIRST_IN_ 1
#define INET_FRAG_LAST_IN_ 2
#define INET_FRAG_COMPLETE_ 4

DEFRAG_IPV4_FILTERS;

COUNTS_MAP(attempts, struct defrag_attempt_key, DEFRAG_MAX_ENTRIES);

HASH_MAP(expired, DEFRAG_MAX_ENTRIES, struct defrag_queue_key, struct defrag_queue_value);

TOTALS_MAP(DEFRAG_KP_SLOTS);

static __always_inline bool wanted(__u32 saddr, __u32 daddr, __u8 protocol)
{
	return (!targ_saddr || saddr == targ_saddr) && (!targ_daddr || daddr == targ_daddr) && (!targ_proto || protocol == targ_proto);
}

/* int ip_defrag(struct net *net, struct sk_buff *skb, u32 user): the skb's network header is the fragment's IPv4 header. */
SEC("kprobe/ip_defrag")
int BPF_KPROBE(defrag_ip_defrag_kprobe, struct net *net, struct sk_buff *skb, u32 user)
{
	struct defrag_attempt_key key = { .user = user };
	struct iphdr ip;

	if (!skb || bpf_probe_read_kernel(&ip, sizeof(ip), BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, network_header)))
		return 0;
	if (!wanted(ip.saddr, ip.daddr, ip.protocol))
		return 0;
	key.netns = BPF_CORE_READ(net, ns.inum);
	key.saddr = ip.saddr;
	key.daddr = ip.daddr;
	key.protocol = ip.protocol;
	bump_slot(&totals, DEFRAG_KP_ATTEMPTS);
	if (!count_key(&attempts, &key))
		bump_slot(&totals, DEFRAG_KP_ATTEMPTS_UNKEYED);
	return 0;
}

/* void ip_expire(struct timer_list *t): the queue's timer, inside struct inet_frag_queue
 * (the first member of struct ipq). A queue already complete is not a timeout. */
SEC("kprobe/ip_expire")
int BPF_KPROBE(defrag_ip_expire_kprobe, struct timer_list *t)
{
	struct inet_frag_queue *q = (void *)t - bpf_core_field_offset(struct inet_frag_queue, timer);
	struct defrag_queue_value *v, init = {};
	struct defrag_queue_key key = {};
	struct frag_v4_compare_key k4;
	__u8 flags;

	if (!t || BPF_CORE_READ_INTO(&k4, q, key.v4))
		return 0;
	flags = BPF_CORE_READ(q, flags);
	if ((flags & INET_FRAG_COMPLETE_) || !wanted(k4.saddr, k4.daddr, (__u8)k4.protocol))
		return 0;
	key.netns = BPF_CORE_READ(q, fqdir, net, ns.inum);
	key.saddr = k4.saddr;
	key.daddr = k4.daddr;
	key.user = k4.user;
	key.id = k4.id;
	key.protocol = (__u8)k4.protocol;
	bump_slot(&totals, DEFRAG_KP_EXPIRED);

	init.meat = BPF_CORE_READ(q, meat);
	init.len = flags & INET_FRAG_LAST_IN_ ? BPF_CORE_READ(q, len) : 0;
	init.flags = flags & (INET_FRAG_FIRST_IN_ | INET_FRAG_LAST_IN_);
	v = bpf_map_lookup_elem(&expired, &key);
	if (v) {
		/* The same queue key again: a sender reusing IDs. The latest state is kept. */
		__sync_fetch_and_add(&v->expiries, 1);
		v->meat = init.meat;
		v->len = init.len;
		v->flags = init.flags;
		return 0;
	}
	init.expiries = 1;
	if (bpf_map_update_elem(&expired, &key, &init, BPF_NOEXIST))
		bump_slot(&totals, DEFRAG_KP_EXPIRED_UNKEYED);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
