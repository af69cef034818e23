// SPDX-License-Identifier: GPL-2.0
/* perf.icmp-rtt: round-trip time of ICMP echoes as this host sees them on its devices.
 *
 * An echo request is stamped when it leaves (net_dev_start_xmit) or arrives
 * (netif_receive_skb), keyed by (local address, peer, echo id, sequence, direction); the
 * matching echo reply arriving (or leaving) ends it. Outgoing: this host pinged the peer, the
 * RTT covers the wire and the peer's stack. Incoming: the peer pinged this host, the "RTT" is
 * this host's own answer time. RTTs go to a log2 histogram per (local, peer, direction) in
 * the kernel, with their sum, min and max; requests never answered stay in `pending`, where the
 * probe reads their age at the end.
 *
 * Three attach flavours of the same two handlers, chosen at load by the probe: tp_btf (the
 * skb's fields plain loads: they run for every packet), raw_tp (with a cached minimal BTF for
 * the CO-RE reads), the classic tracepoints. All but tp_btf start with autoload off ("?"). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "hooks.h"
#include "field.h"
#include "count.h"
#include "log2.h"
#include "perf.icmp-rtt.h"

#define ETH_P_IP_ 0x0800
#define IP_OFFSET_MASK_ 0x1FFF
#define ICMP_ECHOREPLY_ 0
#define ICMP_ECHO_ 8
#define NO_HEADER_ 0xFFFF
#define CHECKSUM_PARTIAL_ 3
#define ICMP_CSUM_OFFSET_ 2 /* offsetof(struct icmphdr, checksum) */

/* Filters, set before load. 0 = any. Addresses in network byte order. */
const volatile __u32 targ_ifindex = 0;
const volatile __u32 targ_netns = 0;  /* inode of the device's network namespace */
const volatile __u32 targ_local = 0;  /* this host's address in the echo */
const volatile __u32 targ_peer = 0;   /* the other end's */
const volatile __u8 targ_dirs = 3;    /* bit ICMPRTT_OUTGOING, bit ICMPRTT_INCOMING */
const volatile __u64 threshold_ns = 0; /* RTTs of at least this are counted as slow (0: not counted) */

/* Echo request -> when it was seen, until its reply. LRU: a peer that never answers cannot
 * fill it; an evicted request counts as lost (its reply, if any, as unmatched). */
LRU_HASH_MAP(pending, ICMPRTT_PENDING, struct icmprtt_key, __u64);

HASH_MAP(peers, ICMPRTT_PEERS, struct icmprtt_peer_key, struct icmprtt_peer);

TOTALS_MAP(ICMPRTT_T_SLOTS);

/* The echo an skb carries, from the host's side. */
struct echo {
	struct icmprtt_key key;
	bool request;
};


static __always_inline bool dev_wanted(struct net_device *dev, bool direct)
{
	if (!dev)
		return false;
	if (targ_ifindex && FIELD(direct, dev->ifindex, dev, ifindex) != targ_ifindex)
		return false;
	return !targ_netns || FIELD(direct, dev->nd_net.net->ns.inum, dev, nd_net.net, ns.inum) == targ_netns;
}

/*
 * The ICMP echo in IPv4 `skb`, if it is one the filters want. `tx`: the skb is leaving (its network
 * header offset is set; skb->data is at L2); else it is being received (skb->data is at L3).
 * The skb's fields are plain loads when `direct`; the headers one probe read each.
 */
static __always_inline bool parse_echo(struct sk_buff *skb, bool tx, struct echo *e, bool direct)
{
	unsigned char *head, *l3, *l4;
	struct iphdr ip;
	__u8 icmp[8];
	__u16 nh;
	__u32 local, peer;
	__u8 dir;

	head = FIELD(direct, skb->head, skb, head);
	if (tx) {
		nh = FIELD(direct, skb->network_header, skb, network_header);
		if (nh == NO_HEADER_)
			return false;
		l3 = head + nh;
	} else {
		l3 = FIELD(direct, skb->data, skb, data);
	}
	if (bpf_probe_read_kernel(&ip, sizeof(ip), l3))
		return false;
	if (ip.version != 4 || ip.ihl < 5 || ip.protocol != IPPROTO_ICMP)
		return false;
	if (bpf_ntohs(ip.frag_off) & IP_OFFSET_MASK_)
		return false; /* a later fragment: no ICMP header */
	l4 = l3 + ip.ihl * 4;
	if (l4 + sizeof(icmp) > head + FIELD(direct, skb->tail, skb, tail)) {
		bump_slot(&totals, ICMPRTT_T_SHORT);
		return false;
	}
	if (bpf_probe_read_kernel(icmp, sizeof(icmp), l4))
		return false;
	if (icmp[0] != ICMP_ECHO_ && icmp[0] != ICMP_ECHOREPLY_)
		return false;
	e->request = icmp[0] == ICMP_ECHO_;
	/* A request leaving or a reply arriving is this host's own ping. */
	dir = e->request == tx ? ICMPRTT_OUTGOING : ICMPRTT_INCOMING;
	local = tx ? ip.saddr : ip.daddr;
	peer = tx ? ip.daddr : ip.saddr;
	if (!(targ_dirs & (1 << dir)))
		return false;
	if ((targ_local && local != targ_local) || (targ_peer && peer != targ_peer))
		return false;
	__builtin_memset(&e->key, 0, sizeof(e->key));
	e->key.local = local;
	e->key.peer = peer;
	__builtin_memcpy(&e->key.id, icmp + 4, 2);
	__builtin_memcpy(&e->key.seq, icmp + 6, 2);
	e->key.dir = dir;
	return true;
}

/* The aggregate of the echo's (local, peer, direction), created when new. */
static __always_inline struct icmprtt_peer *peer_of(struct icmprtt_key *k)
{
	struct icmprtt_peer_key pk = { .local = k->local, .peer = k->peer, .dir = k->dir };
	struct icmprtt_peer init = {};

	return lookup_or_init(&peers, &pk, &init, &totals, ICMPRTT_T_NO_PEER);
}

static __always_inline void on_reply(struct icmprtt_peer *v, struct icmprtt_key *k, __u64 now)
{
	__u64 *sent = bpf_map_lookup_elem(&pending, k);
	__u64 rtt;

	if (!sent) {
		__sync_fetch_and_add(&v->unmatched, 1);
		return;
	}
	rtt = now - *sent;
	bpf_map_delete_elem(&pending, k);
	if ((__s64)rtt < 0) /* stamped on two CPUs a hair apart */
		rtt = 0;
	if (!slot_add_shared(v->slots, log2_slot(rtt / 1000, ICMPRTT_SLOTS), ICMPRTT_SLOTS))
		return;
	__sync_fetch_and_add(&v->matched, 1);
	__sync_fetch_and_add(&v->sum_ns, rtt);
	if (threshold_ns && rtt >= threshold_ns)
		__sync_fetch_and_add(&v->slow, 1);
	/* min and max race only between CPUs answering the same peer at once: harmless */
	if (!v->min_ns || rtt < v->min_ns)
		v->min_ns = rtt;
	if (rtt > v->max_ns)
		v->max_ns = rtt;
}

/*
 * A packet whose L4 checksum is left to the device (CHECKSUM_PARTIAL) at another offset than
 * ICMP's: TCP or UDP sent by a local socket, a VM's offloaded traffic. No echo then, which the
 * skb's own (hot) fields tell without reading the packet, its most expensive part (tp_btf only:
 * elsewhere a field costs a probe read too).
 */
static __always_inline bool offloaded_not_icmp(struct sk_buff *skb, bool direct)
{
	return direct && BITFIELD(direct, skb, ip_summed) == CHECKSUM_PARTIAL_ &&
	       FIELD(direct, skb->csum_offset, skb, csum_offset) != ICMP_CSUM_OFFSET_;
}

/* Most packets are not IPv4, or are offloaded TCP or UDP: those checks come first. */
static __always_inline int on_packet(struct sk_buff *skb, struct net_device *dev, bool tx, bool direct)
{
	struct icmprtt_peer *v;
	struct echo e;
	__u64 now;

	if (FIELD(direct, skb->protocol, skb, protocol) != bpf_htons(ETH_P_IP_) || offloaded_not_icmp(skb, direct))
		return 0;
	if (!dev_wanted(dev, direct) || !parse_echo(skb, tx, &e, direct))
		return 0;
	now = bpf_ktime_get_ns();
	v = peer_of(&e.key);
	if (!v)
		return 0;
	if (!e.request) {
		on_reply(v, &e.key, now);
		return 0;
	}
	/* A request re-sent with the same id and sequence restarts its clock. */
	bpf_map_update_elem(&pending, &e.key, &now, BPF_ANY);
	__sync_fetch_and_add(&v->requests, 1);
	return 0;
}

BTF_RAW_PROGS(icmprtt_rx_btf, icmprtt_rx_raw, netif_receive_skb,
	      on_packet(skb, FIELD(direct, skb->dev, skb, dev), false, direct), struct sk_buff *skb)
BTF_RAW_PROGS(icmprtt_tx_btf, icmprtt_tx_raw, net_dev_start_xmit, on_packet(skb, dev, true, direct),
	      struct sk_buff *skb, struct net_device *dev)

/* Classic tracepoints: the skb address from the record; the device from the skb. */
SKB_TRACEPOINT(icmprtt_rx_tp, net, netif_receive_skb, trace_event_raw_net_dev_template,
	       on_packet(skb, BPF_CORE_READ(skb, dev), false, false))
SKB_TRACEPOINT(icmprtt_tx_tp, net, net_dev_start_xmit, trace_event_raw_net_dev_start_xmit,
	       on_packet(skb, BPF_CORE_READ(skb, dev), true, false))

char LICENSE[] SEC("license") = "GPL";
