// SPDX-License-Identifier: GPL-2.0
/* perf.host-latency: per-stage latency of IPv4 packets through this host's network stack, from
 * tracepoints, each packet followed by its skb pointer.
 *
 * TX: net_dev_queue -> qdisc_enqueue -> qdisc_dequeue -> net_dev_start_xmit -> net_dev_xmit
 * RX: napi_gro_receive_entry / netif_receive_skb_entry / netif_rx_entry -> netif_receive_skb
 *     -> sk_data_ready of the socket the packet is for (delivered to the socket)
 * Any tracked skb freed by kfree_skb on the way is a drop (counted by reason and stage); consumed
 * (consume_skb) before its socket, an RX packet was handled by the kernel itself (ICMP echo...).
 *
 * Each stage's latency (since the packet's previous stamp) goes to a log-linear histogram
 * (lathist.h) of the CPU's own; a stage a packet skips (no qdisc on a noqueue device, no RX
 * entry tracepoint on its path) just is not stamped.
 *
 * What a packet costs is the cache lines its events touch, so each event touches few: the skb
 * table is direct-mapped by address (one line holds an skb's stamps both ways; a packet never
 * completed is overwritten by the next skb hashing there, counted as evicted from the totals),
 * each CPU has one entry of its own for counters and histograms, and a drop is counted in that
 * entry while its key is the CPU's last one, moved to the `drops` hash when the key changes.
 * Nothing is counted twice: a timed stage's packets are its histogram's count, a direction's
 * completed packets its total's, its drops the sum of `drops` (the reader derives them).
 *
 * The same handlers in three flavours (tp_btf with plain loads, raw_tp, classic tracepoints),
 * chosen at load. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "hooks.h"
#include "field.h"
#include "skb-key.h"
#include "ipv4-filter.h"
#include "log2.h"
#include "lathist.h"
#include "perf.host-latency.h"

#define ETH_P_IP_ 0x0800
#define IP_OFFSET_MASK_ 0x1FFF

/* Filters, set before load. 0 = any. Addresses in network byte order, ports in host order. */
const volatile __u32 targ_ifindex = 0; /* the device of a packet's first stamp */
const volatile __u32 targ_netns = 0;   /* inode of the device's network namespace */
const volatile __u32 targ_saddr = 0;
const volatile __u32 targ_daddr = 0;
const volatile __u16 targ_sport = 0;
const volatile __u16 targ_dport = 0;
const volatile __u8 targ_proto = 0;
const volatile __u8 targ_dirs = 3; /* bit 0: TX, bit 1: RX */
const volatile __u64 threshold_ns = 0; /* totals of at least this are counted as slow (0: off) */
/* The kernel has no sock:sk_data_ready: the RX path ends at netif_receive_skb (no socket stage). */
const volatile bool rx_ends_at_receive = false;

/* The skbs followed, direct-mapped by address: one cache line each. */
LINES_MAP(skbs, HOSTLAT_SKBS, struct hostlat_skb);

/* An entry per possible CPU (the probe sizes it at open). */
LINES_MAP(cpus, 1, struct hostlat_cpu);

HASH_MAP(drops, HOSTLAT_DROP_KEYS, struct hostlat_drop, __u64);

static __always_inline struct hostlat_cpu *this_cpu(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&cpus, &cpu);
}

static __always_inline __u64 skb_key(struct sk_buff *skb, const bool direct)
{
	return SKB_KEY(skb, direct, &skbs);
}

static __always_inline struct hostlat_skb *entry_of(__u64 key)
{
	__u32 idx = skb_slot(key, HOSTLAT_SKBS);

	return bpf_map_lookup_elem(&skbs, &idx);
}

/* The path of `key` in direction `dir` when it is being tracked, else NULL. */
static __always_inline struct hostlat_path *tracked(struct hostlat_skb *e, __u64 key, __u32 dir)
{
	if (!e || e->skb != key || dir >= HOSTLAT_DIRS || !e->path[dir].first_ts)
		return NULL;
	return &e->path[dir];
}

static __always_inline void count_dir(struct hostlat_cpu *c, __u32 dir, __u32 counter)
{
	__u32 slot = HOSTLAT_C_DIR_BASE + dir * HOSTLAT_C_PER_DIR + counter;

	if (slot < HOSTLAT_C_SLOTS)
		c->counters[slot] += 1;
}

static __always_inline void count_stage(struct hostlat_cpu *c, __u32 stage)
{
	if (stage < HOSTLAT_STAGES)
		c->counters[stage] += 1;
}

static __always_inline void record(struct hostlat_cpu *c, __u32 hist, __u64 ns)
{
	if (hist < HOSTLAT_HISTS)
		lathist_add(&c->hists[hist], ns);
}

/* Adds `n` drops of `key` to the `drops` hash (full: they are not counted). */
static __always_inline void add_drops(const struct hostlat_drop *key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&drops, key);

	if (!v) {
		if (!bpf_map_update_elem(&drops, key, &n, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&drops, key); /* another CPU inserted it first */
		if (!v)
			return;
	}
	__sync_fetch_and_add(v, n);
}

/* One drop of `key`: in the CPU's pending count while it is the CPU's last key (no hash
 * lookup); a new key first moves the pending count to `drops`. */
static __always_inline void count_drop(struct hostlat_cpu *c, struct hostlat_drop key)
{
	struct hostlat_drop *last = &c->pend_key;

	if (c->pend_count && last->reason == key.reason && last->dir == key.dir && last->stage == key.stage) {
		c->pend_count += 1;
		return;
	}
	if (c->pend_count)
		add_drops(last, c->pend_count);
	*last = key;
	c->pend_count = 1;
}

/* Whether the device passes the device filter; its ifindex in *ifindex. */
static __always_inline bool dev_match(struct net_device *dev, __u32 *ifindex, const bool direct)
{
	if (!dev)
		return false;
	*ifindex = FIELD(direct, dev->ifindex, dev, ifindex);
	if (targ_ifindex && *ifindex != targ_ifindex)
		return false;
	if (targ_netns && FIELD(direct, dev->nd_net.net->ns.inum, dev, nd_net.net, ns.inum) != targ_netns)
		return false;
	return true;
}

/* The IPv4 header and the 4 bytes after it (the ports when there are no options): one read. */
struct ip_ports {
	struct iphdr ip;
	__u16 ports[2];
};

/* Whether the IPv4 packet in `skb` passes the filters: TX from its network header, RX from
 * skb->data (at the network header once eth_type_trans ran; the network header offset is set
 * only later, in __netif_receive_skb_core). Its local port and protocol in *path. */
static __always_inline bool packet_match(struct sk_buff *skb, __u32 dir, struct hostlat_path *path, const bool direct)
{
	unsigned char *l3;
	struct ip_ports h;

	if (FIELD(direct, skb->protocol, skb, protocol) != bpf_htons(ETH_P_IP_))
		return false;
	if (dir == HOSTLAT_TX)
		l3 = FIELD(direct, skb->head, skb, head) + FIELD(direct, skb->network_header, skb, network_header);
	else
		l3 = FIELD(direct, skb->data, skb, data);
	if (bpf_probe_read_kernel(&h, sizeof(h), l3) || h.ip.version != 4 || h.ip.ihl < 5)
		return false;
	if (!ipv4_tuple_matches(&h.ip, targ_saddr, targ_daddr, targ_proto))
		return false;
	path->proto = h.ip.protocol;
	if ((h.ip.protocol == IPPROTO_TCP || h.ip.protocol == IPPROTO_UDP) && !(bpf_ntohs(h.ip.frag_off) & IP_OFFSET_MASK_)) {
		if (h.ip.ihl > 5 && bpf_probe_read_kernel(h.ports, sizeof(h.ports), l3 + h.ip.ihl * 4))
			h.ports[0] = h.ports[1] = 0;
	} else if (targ_sport || targ_dport) {
		return false; /* no ports to match */
	} else {
		h.ports[0] = h.ports[1] = 0;
	}
	if ((targ_sport && bpf_ntohs(h.ports[0]) != targ_sport) || (targ_dport && bpf_ntohs(h.ports[1]) != targ_dport))
		return false;
	path->lport = bpf_ntohs(h.ports[1]);
	return true;
}

/* A packet's first stamp in direction `dir`, at `stage`: filtered, then tracked. */
static __always_inline void start(struct sk_buff *skb, struct net_device *dev, __u32 dir, __u32 stage, const bool direct)
{
	struct hostlat_path fresh = { .stage = stage };
	struct hostlat_path *old;
	struct hostlat_skb *e;
	struct hostlat_cpu *c;
	__u64 key = skb_key(skb, direct);

	if (!(targ_dirs & (1 << dir)) || dir >= HOSTLAT_DIRS)
		return;
	if (!dev_match(dev, &fresh.ifindex, direct) || !packet_match(skb, dir, &fresh, direct))
		return;
	e = entry_of(key);
	c = this_cpu();
	if (!e || !c)
		return;
	old = tracked(e, key, dir);
	/* Transmitted again from inside a driver (a bridge, VLAN or bond over the device): the
	 * inner device's path replaces the outer one. Otherwise the old packet left unseen. */
	if (old && !(dir == HOSTLAT_TX && old->stage == HOSTLAT_TX_START))
		count_dir(c, dir, HOSTLAT_C_REPLACED);
	if (e->skb != key) {
		/* another skb's entry: its packets are evicted (the totals count them) */
		e->skb = key;
		e->path[dir ^ 1].first_ts = 0;
	}
	fresh.first_ts = fresh.last_ts = bpf_ktime_get_ns();
	e->path[dir] = fresh;
	count_stage(c, stage); /* the packets started (read back as HOSTLAT_C_STARTED) */
}

/* A later stamp of a tracked packet: its latency since the previous one. Stages run forward
 * only: a stage seen again (requeued, received again after a VLAN untag) is ignored. Returns
 * the path, or NULL when the skb is not tracked or the stage is not new; the time in *now. */
static __always_inline struct hostlat_path *stamp(struct hostlat_skb *e, __u64 key, __u32 dir, __u32 stage,
						  struct hostlat_cpu *c, __u64 *now)
{
	struct hostlat_path *p = tracked(e, key, dir);

	if (!p || p->stage >= stage)
		return NULL;
	*now = bpf_ktime_get_ns();
	record(c, stage, *now - p->last_ts); /* its count is the stage's packets */
	p->last_ts = *now;
	p->stage = stage;
	return p;
}

/* The last stage: the total, and the packet leaves the table. */
static __always_inline void finish(struct hostlat_path *p, __u32 dir, struct hostlat_cpu *c, __u64 now)
{
	__u64 total = now - p->first_ts;

	record(c, HOSTLAT_STAGES + dir, total); /* its count is HOSTLAT_C_DONE */
	if (threshold_ns && (__s64)total >= (__s64)threshold_ns)
		count_dir(c, dir, HOSTLAT_C_SLOW);
	p->first_ts = 0;
}

/* A later stage of a TX packet (stamped when tracked). */
static __always_inline struct hostlat_path *tx_stage(struct sk_buff *skb, __u32 stage, struct hostlat_cpu **c, __u64 *now,
						     const bool direct)
{
	__u64 key = skb_key(skb, direct);
	struct hostlat_skb *e = entry_of(key);

	if (!tracked(e, key, HOSTLAT_TX))
		return NULL; /* the common case of an untracked skb: one line read */
	*c = this_cpu();
	if (!*c)
		return NULL;
	return stamp(e, key, HOSTLAT_TX, stage, *c, now);
}

static __always_inline int on_queue(struct sk_buff *skb, const bool direct)
{
	start(skb, FIELD(direct, skb->dev, skb, dev), HOSTLAT_TX, HOSTLAT_TX_QUEUE, direct);
	return 0;
}

static __always_inline int on_enqueue(struct sk_buff *skb, const bool direct)
{
	struct hostlat_cpu *c;
	__u64 now;

	tx_stage(skb, HOSTLAT_TX_ENQUEUE, &c, &now, direct);
	return 0;
}

/* qdisc_dequeue: `skb` heads the list of `packets` skbs dequeued (NULL: none). */
static __always_inline int on_dequeue(int packets, struct sk_buff *skb, const bool direct)
{
	struct hostlat_cpu *c;
	__u64 now;

	for (int i = 0; i < HOSTLAT_BULK && skb && i < packets; i++) {
		tx_stage(skb, HOSTLAT_TX_DEQUEUE, &c, &now, direct);
		skb = FIELD(direct, skb->next, skb, next);
	}
	return 0;
}

static __always_inline int on_start_xmit(struct sk_buff *skb, const bool direct)
{
	struct hostlat_cpu *c;
	__u64 now;

	tx_stage(skb, HOSTLAT_TX_START, &c, &now, direct);
	return 0;
}

/* net_dev_xmit: the skb may be freed already; only its address is used. */
static __always_inline int on_xmit(struct sk_buff *skb, int rc, const bool direct)
{
	__u64 key = skb_key(skb, direct), now;
	struct hostlat_skb *e = entry_of(key);
	struct hostlat_path *p = tracked(e, key, HOSTLAT_TX);
	struct hostlat_cpu *c;

	if (!p)
		return 0;
	c = this_cpu();
	if (!c)
		return 0;
	if (rc != 0) {
		count_dir(c, HOSTLAT_TX, HOSTLAT_C_ENDED);
		p->first_ts = 0;
		return 0;
	}
	p = stamp(e, key, HOSTLAT_TX, HOSTLAT_TX_DONE, c, &now);
	if (p)
		finish(p, HOSTLAT_TX, c, now);
	return 0;
}

/* The receive entry tracepoints: a driver (or veth, loopback) hands the packet to the stack. */
static __always_inline int on_rx_entry(struct sk_buff *skb, const bool direct)
{
	start(skb, FIELD(direct, skb->dev, skb, dev), HOSTLAT_RX, HOSTLAT_RX_ENTRY, direct);
	return 0;
}

static __always_inline int on_receive(struct sk_buff *skb, const bool direct)
{
	__u64 key = skb_key(skb, direct), now;
	struct hostlat_skb *e = entry_of(key);
	struct hostlat_cpu *c = this_cpu();

	if (!c)
		return 0;
	if (rx_ends_at_receive) {
		/* the last stage: only packets with an entry stamp have a path to time */
		struct hostlat_path *p = stamp(e, key, HOSTLAT_RX, HOSTLAT_RX_RECEIVE, c, &now);

		if (p)
			finish(p, HOSTLAT_RX, c, now);
		c->rx_current = 0;
		return 0;
	}
	/* no entry stamp (a path without one): the packet starts here */
	if (!tracked(e, key, HOSTLAT_RX))
		start(skb, FIELD(direct, skb->dev, skb, dev), HOSTLAT_RX, HOSTLAT_RX_RECEIVE, direct);
	else
		stamp(e, key, HOSTLAT_RX, HOSTLAT_RX_RECEIVE, c, &now);
	c->rx_current = tracked(e, key, HOSTLAT_RX) ? key : 0;
	return 0;
}

/* sk_data_ready: a socket got data. It is the current packet's when the socket's protocol and
 * local port are the packet's (UDP, TCP). */
static __always_inline int on_data_ready(struct sock *sk, const bool direct)
{
	struct hostlat_path *p;
	struct hostlat_skb *e;
	struct hostlat_cpu *c = this_cpu();
	__u64 key, now;

	if (!c || !c->rx_current || !sk)
		return 0;
	key = c->rx_current;
	e = entry_of(key);
	p = tracked(e, key, HOSTLAT_RX);
	if (!p || p->stage != HOSTLAT_RX_RECEIVE || !p->lport)
		return 0;
	if (FIELD(direct, sk->sk_protocol, sk, sk_protocol) != p->proto ||
	    FIELD(direct, sk->__sk_common.skc_num, sk, __sk_common.skc_num) != p->lport)
		return 0;
	c->rx_current = 0;
	p = stamp(e, key, HOSTLAT_RX, HOSTLAT_RX_SOCKET, c, &now);
	if (p)
		finish(p, HOSTLAT_RX, c, now);
	return 0;
}

/* The end of a tracked path freed on the way: a drop by reason, or consumed. */
static __always_inline void end_path(struct hostlat_cpu *c, struct hostlat_path *p, __u32 dir, bool drop, __u32 reason)
{
	if (!p->first_ts)
		return;
	if (drop) {
		struct hostlat_drop d = { .reason = reason, .dir = dir, .stage = p->stage };

		count_drop(c, d); /* summed by direction: HOSTLAT_C_DROPPED */
	} else {
		count_dir(c, dir, HOSTLAT_C_ENDED);
	}
	p->first_ts = 0;
}

/* consume_skb / kfree_skb: the end of a tracked skb still on its way. */
static __always_inline void on_free(struct sk_buff *skb, bool drop, __u32 reason, const bool direct)
{
	__u64 key = skb_key(skb, direct);
	struct hostlat_skb *e = entry_of(key);
	struct hostlat_cpu *c;

	if (!e || e->skb != key)
		return; /* the common case of an untracked skb: one line read */
	e->skb = 0;
	c = this_cpu();
	if (!c)
		return;
	end_path(c, &e->path[HOSTLAT_TX], HOSTLAT_TX, drop, reason);
	end_path(c, &e->path[HOSTLAT_RX], HOSTLAT_RX, drop, reason);
	if (c->rx_current == key)
		c->rx_current = 0;
}

static __always_inline int on_consume(struct sk_buff *skb, const bool direct)
{
	on_free(skb, false, 0, direct);
	return 0;
}

static __always_inline int on_kfree(struct sk_buff *skb, __u32 reason, const bool direct)
{
	on_free(skb, true, reason, direct);
	return 0;
}

/* tp_btf (plain loads) and raw_tp (CO-RE probe reads): the same typed arguments. */
#define HOSTLAT_BTF_PROGS(stem, tp, call, args...) \
	BTF_RAW_PROGS(hostlat_##stem##_btf, hostlat_##stem##_raw, tp, call, args)

HOSTLAT_BTF_PROGS(queue, net_dev_queue, on_queue(skb, direct), struct sk_buff *skb)
HOSTLAT_BTF_PROGS(enqueue, qdisc_enqueue, on_enqueue(skb, direct), struct Qdisc *q, const struct netdev_queue *txq, struct sk_buff *skb)
HOSTLAT_BTF_PROGS(dequeue, qdisc_dequeue, on_dequeue(packets, skb, direct), struct Qdisc *q, const struct netdev_queue *txq, int packets, struct sk_buff *skb)
HOSTLAT_BTF_PROGS(start, net_dev_start_xmit, on_start_xmit(skb, direct), struct sk_buff *skb)
HOSTLAT_BTF_PROGS(xmit, net_dev_xmit, on_xmit(skb, rc, direct), struct sk_buff *skb, int rc)
HOSTLAT_BTF_PROGS(gro, napi_gro_receive_entry, on_rx_entry(skb, direct), struct sk_buff *skb)
HOSTLAT_BTF_PROGS(rcventry, netif_receive_skb_entry, on_rx_entry(skb, direct), struct sk_buff *skb)
HOSTLAT_BTF_PROGS(rxentry, netif_rx_entry, on_rx_entry(skb, direct), struct sk_buff *skb)
HOSTLAT_BTF_PROGS(receive, netif_receive_skb, on_receive(skb, direct), struct sk_buff *skb)
HOSTLAT_BTF_PROGS(ready, sk_data_ready, on_data_ready((struct sock *)sk, direct), const struct sock *sk)
HOSTLAT_BTF_PROGS(consume, consume_skb, on_consume(skb, direct), struct sk_buff *skb)
HOSTLAT_BTF_PROGS(kfree, kfree_skb, on_kfree(skb, reason, direct), struct sk_buff *skb, void *location, enum skb_drop_reason reason)

/* Classic tracepoints: the skb (or sock) address from the record, fields by probe reads. */
#define HOSTLAT_TP_PROG(stem, category, tp, type, call)                         \
	SEC("?tracepoint/" #category "/" #tp)                                   \
	int hostlat_##stem##_tp(type *args)                                     \
	{                                                                       \
		const bool direct = false;                                      \
		(void)direct;                                                   \
		return call;                                                    \
	}

#define SKB_ (struct sk_buff *)args->skbaddr
HOSTLAT_TP_PROG(queue, net, net_dev_queue, struct trace_event_raw_net_dev_template, on_queue(SKB_, direct))
HOSTLAT_TP_PROG(enqueue, qdisc, qdisc_enqueue, struct trace_event_raw_qdisc_enqueue, on_enqueue(SKB_, direct))
HOSTLAT_TP_PROG(dequeue, qdisc, qdisc_dequeue, struct trace_event_raw_qdisc_dequeue, on_dequeue(args->packets, SKB_, direct))
HOSTLAT_TP_PROG(start, net, net_dev_start_xmit, struct trace_event_raw_net_dev_start_xmit, on_start_xmit(SKB_, direct))
HOSTLAT_TP_PROG(xmit, net, net_dev_xmit, struct trace_event_raw_net_dev_xmit, on_xmit(SKB_, args->rc, direct))
HOSTLAT_TP_PROG(gro, net, napi_gro_receive_entry, struct trace_event_raw_net_dev_rx_verbose_template, on_rx_entry(SKB_, direct))
HOSTLAT_TP_PROG(rcventry, net, netif_receive_skb_entry, struct trace_event_raw_net_dev_rx_verbose_template, on_rx_entry(SKB_, direct))
HOSTLAT_TP_PROG(rxentry, net, netif_rx_entry, struct trace_event_raw_net_dev_rx_verbose_template, on_rx_entry(SKB_, direct))
HOSTLAT_TP_PROG(receive, net, netif_receive_skb, struct trace_event_raw_net_dev_template, on_receive(SKB_, direct))
HOSTLAT_TP_PROG(ready, sock, sk_data_ready, struct trace_event_raw_sk_data_ready, on_data_ready((struct sock *)args->skaddr, direct))
HOSTLAT_TP_PROG(consume, skb, consume_skb, struct trace_event_raw_consume_skb, on_consume(SKB_, direct))
HOSTLAT_TP_PROG(kfree, skb, kfree_skb, struct trace_event_raw_kfree_skb, on_kfree(SKB_, args->reason, direct))

char LICENSE[] SEC("license") = "GPL";
