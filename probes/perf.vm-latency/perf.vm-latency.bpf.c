// SPDX-License-Identifier: GPL-2.0
/* perf.vm-latency: per-layer latency of a VM's IPv4 traffic through the host, from tracepoints.
 *
 * To the VM:   uplink netif_receive_skb -> [bridge/OVS] -> tap net_dev_queue -> [qdisc]
 *              -> tap net_dev_start_xmit -> [tun ring] -> consume_skb (QEMU read it)
 * From the VM: tap netif_receive_skb -> [bridge/OVS] -> uplink net_dev_queue -> [qdisc]
 *              -> uplink net_dev_start_xmit -> [driver] -> net_dev_xmit rc 0
 *
 * Across the bridge a packet is followed by a key made of its headers (struct vmlat_key): the
 * OVS userspace datapath re-injects a new skb through AF_PACKET, so the skb pointer is lost
 * there. Within one device (qdisc, driver, tun ring) the skb pointer is followed. Each layer's
 * latency goes to a log-linear histogram (lathist.h) per (direction, layer) of the CPU's own.
 *
 * What a packet costs is the cache lines its events touch: each CPU has one entry of its own
 * for its stash, counters and histograms, and an skb within its exit device (queued there, then
 * to the VM until QEMU reads it) is in a table direct-mapped by address: start_xmit finds the
 * skb it queued without parsing its headers again, and every skb freed on the host costs one
 * line read, not a hash lookup. Across the bridge, the packet-key table is direct-mapped too,
 * by a hash of the key: one line per lookup (a key hashing where another waits evicts it).
 *
 * Three attach flavours of the same six handlers, chosen at load by the probe:
 *  - tp_btf: the skb's fields are plain loads;
 *  - raw_tp: with a cached minimal BTF for the CO-RE reads;
 *  - the classic tracepoints: where BTF tracepoints are refused.
 * All but tp_btf start with autoload off ("?" prefix). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "hooks.h"
#include "field.h"
#include "skb-key.h"
#include "log2.h"
#include "lathist.h"
#include "perf.vm-latency.h"

#define ETH_P_IP_ 0x0800
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define ETH_HLEN_ 14
#define VLAN_HLEN_ 4
#define IP_OFFSET_MASK_ 0x1FFF

/* Filters, set before load. 0 = any. Addresses in network byte order. */
const volatile __u32 targ_tap = 0;        /* the VM's tap: required */
const volatile __u32 targ_netns = 0;      /* inode of the tap's network namespace */
const volatile __u8 targ_any_uplink = 0;  /* 1: every other device of the namespace is an uplink */
const volatile __u32 targ_vm_ip = 0;      /* daddr to the VM, saddr from it */
const volatile __u32 targ_saddr = 0;      /* the conversation src_ip <-> dst_ip, both ways */
const volatile __u32 targ_daddr = 0;
const volatile __u8 targ_proto = 0;
const volatile __u16 targ_port = 0;       /* host byte order; source or destination */
const volatile __u8 targ_dirs = 3;        /* bit 0: to the VM, bit 1: from the VM */

/* The uplinks (ifindex -> 1), filled by the probe after load and before attach. */
HASH_MAP(uplinks, VMLAT_UPLINKS, __u32, __u8);

/* Packet key -> its stamps until the exit device's start_xmit, one cache line each. */
LINES_MAP(flows, VMLAT_FLOWS, struct vmlat_flow);

/* skb -> its stamps within its exit device: queued until the driver gets it, then to the VM
 * until QEMU reads it or it is dropped, one cache line each. */
LINES_MAP(skbs, VMLAT_SKBS, struct vmlat_skb);

/* An entry per possible CPU (the probe sizes it at open). */
LINES_MAP(cpus, 1, struct vmlat_cpu);

enum role { ROLE_NONE = 0, ROLE_TAP = 1, ROLE_UPLINK = 2 };
enum key_result { KEY_OK = 0, KEY_NOT_IPV4 = 1, KEY_FILTERED = 2 };

static __always_inline struct vmlat_cpu *this_cpu(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&cpus, &cpu);
}

static __always_inline void count(__u32 slot)
{
	struct vmlat_cpu *c = this_cpu();

	if (c && slot < VMLAT_C_SLOTS)
		c->counters[slot] += 1; /* this CPU's own: no atomics needed */
}

static __always_inline void count_dir(__u32 dir, __u32 counter)
{
	count(dir * VMLAT_C_PER_DIR + counter);
}

static __always_inline void record(__u32 dir, __u32 layer, __u64 ns)
{
	__u32 idx = dir * VMLAT_LAYERS + layer;
	struct vmlat_cpu *c = this_cpu();

	if (c && idx < VMLAT_DIRS * VMLAT_LAYERS)
		lathist_add(&c->hists[idx], ns);
}

static __always_inline __u64 skb_key(struct sk_buff *skb, const bool direct)
{
	return SKB_KEY(skb, direct, &skbs);
}

/* The entry of an skb key in the `skbs` table when it holds that skb in `state`, else NULL. */
static __always_inline struct vmlat_skb *skb_entry(__u64 key, __u8 state)
{
	__u32 idx = skb_slot(key, VMLAT_SKBS);
	struct vmlat_skb *e = bpf_map_lookup_elem(&skbs, &idx);

	return e && e->skb == key && e->state == state ? e : NULL;
}

/* The `skbs` entry of an skb key, taken over for it (whatever skb it held is forgotten). */
static __always_inline struct vmlat_skb *skb_take(__u64 key)
{
	__u32 idx = skb_slot(key, VMLAT_SKBS);
	struct vmlat_skb *e = bpf_map_lookup_elem(&skbs, &idx);

	if (e)
		e->skb = key;
	return e;
}

/* Whether the skb is GSO: its exit device may segment it, and the segments are other skbs. */
static __always_inline bool is_gso(struct sk_buff *skb, const bool direct)
{
	unsigned char *head = FIELD(direct, skb->head, skb, head);
	struct skb_shared_info *shinfo = (void *)(head + FIELD(direct, skb->end, skb, end));
	__u16 gso_size = 0;

	bpf_probe_read_kernel(&gso_size, sizeof(gso_size), &shinfo->gso_size);
	return gso_size != 0;
}

/* Whether `dev` is the tap or an uplink (of the tap's namespace); its ifindex in *ifindex. */
static __always_inline int dev_role(struct net_device *dev, __u32 *ifindex, const bool direct)
{
	int role;
	__u32 idx;

	if (!dev)
		return ROLE_NONE;
	idx = FIELD(direct, dev->ifindex, dev, ifindex);
	if (idx == targ_tap)
		role = ROLE_TAP;
	else if (targ_any_uplink)
		role = idx > 1 ? ROLE_UPLINK : ROLE_NONE; /* not lo */
	else
		role = bpf_map_lookup_elem(&uplinks, &idx) ? ROLE_UPLINK : ROLE_NONE;
	if (role == ROLE_NONE)
		return ROLE_NONE;
	if (targ_netns && FIELD(direct, dev->nd_net.net->ns.inum, dev, nd_net.net, ns.inum) != targ_netns)
		return ROLE_NONE;
	*ifindex = idx;
	return role;
}

static __always_inline bool want_dir(__u32 dir)
{
	return targ_dirs & (1 << dir);
}

/* The conversation filter: src_ip -> dst_ip or the reply. */
static __always_inline bool addr_match(__u32 s, __u32 d)
{
	if (!targ_saddr && !targ_daddr)
		return true;
	if ((!targ_saddr || s == targ_saddr) && (!targ_daddr || d == targ_daddr))
		return true;
	return (!targ_saddr || d == targ_saddr) && (!targ_daddr || s == targ_daddr);
}

/*
 * The key of the IPv4 packet in `skb`. `at_l2`: skb->data is at the Ethernet header (transmit
 * side), else at the network header (netif_receive_skb, after eth_type_trans).
 */
static __always_inline int packet_key(struct sk_buff *skb, bool at_l2, __u32 dir, struct vmlat_key *key, const bool direct)
{
	unsigned char *head, *data, *l3, *l4, *pl, *end;
	struct iphdr ip;
	__u8 l4h[16];
	__u16 proto, tot;
	long avail;

	head = FIELD(direct, skb->head, skb, head);
	data = FIELD(direct, skb->data, skb, data);
	if (at_l2) {
		if (bpf_probe_read_kernel(&proto, sizeof(proto), data + 12))
			return KEY_NOT_IPV4;
		l3 = data + ETH_HLEN_;
	} else {
		proto = FIELD(direct, skb->protocol, skb, protocol);
		l3 = data;
	}
	if (proto == bpf_htons(ETH_P_8021Q_) || proto == bpf_htons(ETH_P_8021AD_)) {
		/* one VLAN tag in the frame: the real type follows it */
		if (bpf_probe_read_kernel(&proto, sizeof(proto), l3 + 2))
			return KEY_NOT_IPV4;
		l3 += VLAN_HLEN_;
	}
	if (proto != bpf_htons(ETH_P_IP_))
		return KEY_NOT_IPV4;
	if (bpf_probe_read_kernel(&ip, sizeof(ip), l3))
		return KEY_NOT_IPV4;
	if (ip.version != 4 || ip.ihl < 5)
		return KEY_NOT_IPV4;

	if (targ_vm_ip && (dir == VMLAT_TO_VM ? ip.daddr : ip.saddr) != targ_vm_ip)
		return KEY_FILTERED;
	if (!addr_match(ip.saddr, ip.daddr))
		return KEY_FILTERED;
	if (targ_proto && ip.protocol != targ_proto)
		return KEY_FILTERED;

	__builtin_memset(key, 0, sizeof(*key));
	key->saddr = ip.saddr;
	key->daddr = ip.daddr;
	key->id = ip.id;
	key->frag = ip.frag_off;
	key->proto = ip.protocol;
	key->dir = dir;
	key->len = ip.tot_len;

	/* L4 fields of the first fragment only: later ones have no L4 header. */
	if (bpf_ntohs(ip.frag_off) & IP_OFFSET_MASK_) {
		if (targ_port)
			return KEY_FILTERED;
		return KEY_OK;
	}
	l4 = l3 + ip.ihl * 4;
	if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP && ip.protocol != IPPROTO_ICMP) {
		if (targ_port)
			return KEY_FILTERED;
		return KEY_OK;
	}
	if (bpf_probe_read_kernel(l4h, sizeof(l4h), l4))
		return targ_port ? KEY_FILTERED : KEY_OK;
	if (ip.protocol == IPPROTO_ICMP) {
		if (targ_port)
			return KEY_FILTERED;
		/* type, code, (checksum), id, seq */
		key->l4a = (__u32)l4h[0] << 24 | (__u32)l4h[1] << 16 | (__u32)l4h[4] << 8 | l4h[5];
		key->l4b = (__u32)l4h[6] << 8 | l4h[7];
		pl = l4 + 8;
	} else {
		__u16 sport = (__u16)l4h[0] << 8 | l4h[1];
		__u16 dport = (__u16)l4h[2] << 8 | l4h[3];

		if (targ_port && sport != targ_port && dport != targ_port)
			return KEY_FILTERED;
		__builtin_memcpy(&key->l4a, l4h, 4);
		if (ip.protocol == IPPROTO_TCP) {
			__builtin_memcpy(&key->l4b, l4h + 4, 4);
			__builtin_memcpy(&key->l4c, l4h + 8, 4);
			pl = l4 + (l4h[12] >> 4) * 4;
			/* seq and ack tell segments apart; without the length, the first segment of a
			 * GSO packet the exit device segments still matches it */
			key->len = 0;
		} else {
			pl = l4 + 8;
		}
	}
	/* Up to 8 payload bytes, within the packet and the linear area. */
	tot = bpf_ntohs(ip.tot_len);
	end = head + FIELD(direct, skb->tail, skb, tail);
	if (l3 + tot < end)
		end = l3 + tot;
	avail = (long)(end - pl);
	if (avail >= 8)
		bpf_probe_read_kernel(&key->payload, 8, pl);
	else if (avail > 0)
		bpf_probe_read_kernel(&key->payload, avail & 7, pl);
	return KEY_OK;
}

/* A packet at a watched device, its direction and key: received there (uplink: to the VM; tap:
 * from the VM) or, when `egress`, leaving through it at L2 (tap: to the VM; uplink: from the VM). False
 * when the device or the direction is not watched or the packet has no key. */
static __always_inline bool watched_packet(struct sk_buff *skb, struct net_device *dev, bool egress,
					   __u32 *ifindex, __u32 *dir, struct vmlat_key *key, const bool direct)
{
	int role, r;

	role = dev_role(dev, ifindex, direct);
	if (role == ROLE_NONE)
		return false;
	*dir = (role == ROLE_TAP) == egress ? VMLAT_TO_VM : VMLAT_FROM_VM;
	if (!want_dir(*dir))
		return false;
	r = packet_key(skb, egress, *dir, key, direct);
	if (r == KEY_NOT_IPV4)
		count(VMLAT_C_NOT_IPV4);
	return r == KEY_OK;
}

/* The `flows` entry a key hashes to: its conversation (addresses, protocol, direction, ports)
 * picks a group of VMLAT_FLOW_WAYS neighbouring entries, a hash of the whole key one of them. A
 * conversation's packets thus touch the same few cache lines, hot from the ones before, and
 * many of them can be on their way at once (a batch of OVS upcalls). */
#define VMLAT_FLOW_WAYS 32
static __always_inline struct vmlat_flow *flow_slot(const struct vmlat_key *k)
{
	const __u64 *w = (const __u64 *)k;
	__u64 conv = ((__u64)k->saddr << 32 | k->daddr) ^ ((__u64)k->proto << 40 | (__u64)k->dir << 32 | k->l4a);
	__u32 way = (__u32)(((w[0] ^ w[1] ^ w[2] ^ w[3] ^ w[4]) * 0x9E3779B97F4A7C15ULL) >> 40) & (VMLAT_FLOW_WAYS - 1);
	__u32 idx = ((__u32)((conv * 0x9E3779B97F4A7C15ULL) >> 40) + way) & (VMLAT_FLOWS - 1);

	return bpf_map_lookup_elem(&flows, &idx);
}

/* The stamps of `k` when its entry holds them, else NULL. */
static __always_inline struct vmlat_flow *flow_find(const struct vmlat_key *k)
{
	struct vmlat_flow *f = flow_slot(k);
	const __u64 *a, *b;

	if (!f || (!f->rx_ts && !f->queue_ts))
		return NULL;
	a = (const __u64 *)&f->key;
	b = (const __u64 *)k;
	if (a[0] != b[0] || a[1] != b[1] || a[2] != b[2] || a[3] != b[3] || a[4] != b[4])
		return NULL;
	return f;
}

/* Stamps `k` in its entry (whatever key it held is forgotten: evicted). */
static __always_inline void flow_put(const struct vmlat_key *k, __u64 rx_ts, __u64 queue_ts, __u32 out_ifindex)
{
	struct vmlat_flow *f = flow_slot(k);

	if (!f)
		return;
	f->key = *k;
	f->rx_ts = rx_ts;
	f->queue_ts = queue_ts;
	f->out_ifindex = out_ifindex;
}

/* netif_receive_skb: the path starts (uplink: to the VM; tap: from the VM). */
static __always_inline int on_rx(struct sk_buff *skb, const bool direct)
{
	struct vmlat_key key;
	__u32 ifindex = 0, dir;

	if (!watched_packet(skb, FIELD(direct, skb->dev, skb, dev), false, &ifindex, &dir, &key, direct))
		return 0;
	/* A new packet: it replaces whatever an earlier packet of the same key left. */
	flow_put(&key, bpf_ktime_get_ns(), 0, 0);
	count_dir(dir, VMLAT_C_RX);
	return 0;
}

/* The queued skb's entry, so net_dev_start_xmit finds it by one line. */
static __always_inline void queued(struct sk_buff *skb, __u32 dir, __u32 ifindex, __u64 now, __u64 rx_ts, const bool direct)
{
	struct vmlat_skb *e = skb_take(skb_key(skb, direct));

	if (!e)
		return;
	e->queue_ts = now;
	e->rx_ts = rx_ts;
	e->out_ifindex = ifindex;
	e->dir = dir;
	e->state = VMLAT_SKB_QUEUED;
}

/* net_dev_queue on the exit device (tap: to the VM; uplink: from the VM). */
static __always_inline int on_queue(struct sk_buff *skb, const bool direct)
{
	struct vmlat_flow *flow;
	struct vmlat_key key;
	__u32 ifindex = 0, dir;
	__u64 now;

	if (!watched_packet(skb, FIELD(direct, skb->dev, skb, dev), true, &ifindex, &dir, &key, direct))
		return 0;
	now = bpf_ktime_get_ns();
	count_dir(dir, VMLAT_C_QUEUE);
	flow = flow_find(&key);
	if (flow && flow->rx_ts) {
		if (flow->queue_ts)
			return 0; /* a copy on a second exit device (flooded): the first one counts */
		/* the key's stamps stay for a segment of it at start_xmit (another skb) */
		flow->queue_ts = now;
		flow->out_ifindex = ifindex;
		record(dir, VMLAT_BRIDGE, now - flow->rx_ts);
		queued(skb, dir, ifindex, now, flow->rx_ts, direct);
		return 0;
	}
	count_dir(dir, VMLAT_C_QUEUE_UNMATCHED);
	/* To the VM, whatever the tap queues is the VM's traffic (from the host, or a path not
	 * watched): its qdisc and tun ring times still count. From the VM, an uplink's packet that
	 * did not come from the tap is someone else's. */
	if (dir == VMLAT_TO_VM) {
		queued(skb, dir, ifindex, now, 0, direct);
		/* by its key only when the device may segment it */
		if (is_gso(skb, direct))
			flow_put(&key, 0, now, ifindex);
	}
	return 0;
}

/* net_dev_start_xmit: the qdisc let it go, the driver gets it. */
static __always_inline int on_start_xmit(struct sk_buff *skb, struct net_device *dev, const bool direct)
{
	__u64 now, rx_ts = 0, key_of_skb = skb_key(skb, direct);
	struct vmlat_skb *e = skb_entry(key_of_skb, VMLAT_SKB_QUEUED);
	struct vmlat_flow *flow;
	struct vmlat_cpu *c;
	struct vmlat_key key;
	__u32 ifindex = 0, dir;
	bool matched = false;

	if (e && dev && FIELD(direct, dev->ifindex, dev, ifindex) == e->out_ifindex) {
		/* the skb queued here (it passed the filters there): no header to parse */
		dir = e->dir;
		now = bpf_ktime_get_ns();
		count_dir(dir, VMLAT_C_XMIT);
		record(dir, VMLAT_QDISC, now - e->queue_ts);
		rx_ts = e->rx_ts;
		matched = true;
		e->state = VMLAT_SKB_FREE;
	} else {
		/* another skb than the one queued (a segment of it, a requeue): by its key */
		if (!watched_packet(skb, dev, true, &ifindex, &dir, &key, direct))
			return 0;
		now = bpf_ktime_get_ns();
		count_dir(dir, VMLAT_C_XMIT);
		flow = flow_find(&key);
		if (flow && flow->queue_ts && flow->out_ifindex == ifindex) {
			record(dir, VMLAT_QDISC, now - flow->queue_ts);
			rx_ts = flow->rx_ts;
			matched = true;
			flow->rx_ts = flow->queue_ts = 0;
		} else {
			count_dir(dir, VMLAT_C_XMIT_UNMATCHED);
		}
	}
	if (dir == VMLAT_FROM_VM && !matched)
		return 0;
	c = this_cpu();
	if (c) {
		c->stash.skb = key_of_skb;
		c->stash.xmit_ts = now;
		c->stash.rx_ts = rx_ts;
		c->stash.dir = dir;
	}
	if (dir == VMLAT_TO_VM) {
		struct vmlat_skb *t = skb_take(key_of_skb);

		if (t) {
			t->xmit_ts = now;
			t->rx_ts = rx_ts;
			t->dir = dir;
			t->state = VMLAT_SKB_ON_TAP;
		}
	}
	return 0;
}

/* net_dev_xmit: what the driver said. The skb may be freed already: only its address is used. */
static __always_inline int on_xmit(struct sk_buff *skb, int rc, const bool direct)
{
	struct vmlat_cpu *c = this_cpu();
	struct vmlat_stash *st;
	__u32 dir;
	__u64 now, xmit_ts, rx_ts;

	if (!c)
		return 0;
	st = &c->stash;
	if (!st->skb || st->skb != skb_key(skb, direct))
		return 0;
	dir = st->dir;
	xmit_ts = st->xmit_ts;
	rx_ts = st->rx_ts;
	st->skb = 0;
	if (dir >= VMLAT_DIRS)
		return 0;
	if (rc != 0) {
		count_dir(dir, VMLAT_C_XMIT_FAILED);
		return 0;
	}
	if (dir != VMLAT_FROM_VM)
		return 0; /* to the VM the tun ring ends when QEMU reads the skb */
	now = bpf_ktime_get_ns();
	record(VMLAT_FROM_VM, VMLAT_DRIVER, now - xmit_ts);
	if (rx_ts)
		record(VMLAT_FROM_VM, VMLAT_TOTAL, now - rx_ts);
	count_dir(VMLAT_FROM_VM, VMLAT_C_DONE);
	return 0;
}

/* consume_skb: freed after use; for a tap skb, QEMU read it (tun_do_read). */
static __always_inline int on_consume(struct sk_buff *skb, const bool direct)
{
	struct vmlat_skb *t = skb_entry(skb_key(skb, direct), VMLAT_SKB_ON_TAP);
	struct net_device *dev;
	__u64 now, xmit_ts, rx_ts;

	if (!t)
		return 0; /* the common case, an skb never on the tap: one line read */
	xmit_ts = t->xmit_ts;
	rx_ts = t->rx_ts;
	t->state = VMLAT_SKB_FREE;
	dev = FIELD(direct, skb->dev, skb, dev);
	if (!dev || FIELD(direct, dev->ifindex, dev, ifindex) != targ_tap) {
		count(VMLAT_C_STALE); /* the address was reused by an skb we never saw on the tap */
		return 0;
	}
	now = bpf_ktime_get_ns();
	record(VMLAT_TO_VM, VMLAT_TUN_RING, now - xmit_ts);
	if (rx_ts)
		record(VMLAT_TO_VM, VMLAT_TOTAL, now - rx_ts);
	count_dir(VMLAT_TO_VM, VMLAT_C_DONE);
	return 0;
}

/* kfree_skb: a tap skb freed as a drop (ring full, filter, copy to QEMU failed). */
static __always_inline int on_drop(struct sk_buff *skb, const bool direct)
{
	struct vmlat_skb *t = skb_entry(skb_key(skb, direct), VMLAT_SKB_ON_TAP);

	if (!t)
		return 0;
	t->state = VMLAT_SKB_FREE;
	count_dir(VMLAT_TO_VM, VMLAT_C_DROPPED);
	return 0;
}

BTF_RAW_PROGS(vmlat_rx_btf, vmlat_rx_raw, netif_receive_skb, on_rx(skb, direct), struct sk_buff *skb)
BTF_RAW_PROGS(vmlat_queue_btf, vmlat_queue_raw, net_dev_queue, on_queue(skb, direct), struct sk_buff *skb)
BTF_RAW_PROGS(vmlat_start_btf, vmlat_start_raw, net_dev_start_xmit, on_start_xmit(skb, dev, direct),
	      struct sk_buff *skb, struct net_device *dev)
BTF_RAW_PROGS(vmlat_xmit_btf, vmlat_xmit_raw, net_dev_xmit, on_xmit(skb, rc, direct), struct sk_buff *skb, int rc)
BTF_RAW_PROGS(vmlat_consume_btf, vmlat_consume_raw, consume_skb, on_consume(skb, direct), struct sk_buff *skb)
BTF_RAW_PROGS(vmlat_drop_btf, vmlat_drop_raw, kfree_skb, on_drop(skb, direct), struct sk_buff *skb)

/* Classic tracepoints: the skb address from the record; the device from the skb; probe reads. */
SKB_TRACEPOINT(vmlat_rx_tp, net, netif_receive_skb, trace_event_raw_net_dev_template, on_rx(skb, false))
SKB_TRACEPOINT(vmlat_queue_tp, net, net_dev_queue, trace_event_raw_net_dev_template, on_queue(skb, false))
SKB_TRACEPOINT(vmlat_start_tp, net, net_dev_start_xmit, trace_event_raw_net_dev_start_xmit,
	       on_start_xmit(skb, BPF_CORE_READ(skb, dev), false))
SKB_TRACEPOINT(vmlat_xmit_tp, net, net_dev_xmit, trace_event_raw_net_dev_xmit, on_xmit(skb, args->rc, false))
SKB_TRACEPOINT(vmlat_consume_tp, skb, consume_skb, trace_event_raw_consume_skb, on_consume(skb, false))
SKB_TRACEPOINT(vmlat_drop_tp, skb, kfree_skb, trace_event_raw_kfree_skb, on_drop(skb, false))

char LICENSE[] SEC("license") = "GPL";
