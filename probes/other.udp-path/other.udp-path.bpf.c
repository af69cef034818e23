// SPDX-License-Identifier: GPL-2.0
/* other.udp-path: one UDP flow followed hook to hook across devices and namespaces.
 *
 * Every hook checks whether the skb carries the flow (IPv4, both addresses and ports; the
 * answer too with `targ_both`). A packet is followed by its skb address, which stays the same
 * through veth pairs, bridges and the local stack: the `packets` table remembers where each one
 * was last seen, so each hop counts its packets (`hops`) and each pair of consecutive hops the
 * time between them (`pairs`, a log2 histogram with count, sum and max). kfree_skb ends a packet
 * as a drop (`drops`, by place and reason). On the receiving socket (sk_data_ready) the packet
 * moves to the socket's queue of datagrams (`sockets`), which the application's reads
 * (sock_recv_length) take in order. The first `sample_packets` packets also stream each hop to
 * the ring buffer, so a report can show their journeys.
 *
 * Three attach flavours of the same handlers, chosen at load by the probe: raw_tp (with a
 * cached minimal BTF for the CO-RE reads), tp_btf, the classic tracepoints. All but tp_btf
 * start with autoload off ("?" prefix). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "btf-record.h"
#include "count.h"
#include "field.h"
#include "hooks.h"
#include "log2.h"
#include "skb-key.h"
#include "other.udp-path.h"

#define ETH_P_IP_ 0x0800
#define IP_OFFSET_MASK_ 0x1FFF
#define NO_HEADER_ 0xFFFF
#define MSG_PEEK_ 2

/* The flow, set before load: network byte order. All four are required (the probe checks). */
const volatile __u32 targ_saddr = 0;
const volatile __u32 targ_daddr = 0;
const volatile __u16 targ_sport = 0;
const volatile __u16 targ_dport = 0;
const volatile __u8 targ_both = 0;      /* the answer (dst -> src) too */
const volatile __u32 sample_packets = 0; /* packets whose every hop goes to the ring buffer */
/* A packet not seen for this long is taken for a new one when its skb address comes back. */
const volatile __u64 stale_ns = 1000000000ULL;

/* Packets followed, direct-mapped by their skb key (skb-key.h): a slot holds the packet last
 * followed there, and another skb hashing to it takes it over (the packet it held is lost to
 * the path, as an LRU would lose it). One cache line a hop instead of an LRU hash's lookups and
 * updates. */
LINES_MAP(packets, UDPPATH_PACKETS, struct udppath_slot);

HASH_MAP(pairs, UDPPATH_PAIRS, struct udppath_pair, struct udppath_pair_stats);

HASH_MAP(drops, UDPPATH_DROPS, struct udppath_drop, __u64);

/* UDPPATH_RECENT entries per possible CPU, CPU-major (the probe sizes it at open; a CPU past its
 * end counts straight in `pairs`), a cache line each. */
LINES_MAP(recent, UDPPATH_RECENT, struct udppath_recent);

/* The drop key each CPU counted last, one entry per possible CPU (sized as `recent`). */
LINES_MAP(recent_drops, 1, struct udppath_recent_drop);

RINGBUF_MAP(events, UDPPATH_RING_BYTES);
BTF_RECORD_TYPE(udppath_event);

/* Packets sampled so far (racing CPUs may sample a few more than `sample_packets`). */
__u32 sampled = 0;

/* Followed UDP sockets: the datagrams queued on each, until read. */
HASH_MAP(sockets, UDPPATH_SOCKETS, __u64, struct udppath_sockq);

/* The skb each CPU is receiving (netif_receive_skb), for sk_data_ready: its address and key. */
struct udppath_receiving {
	__u64 skb;
	__u64 key;
};
PERCPU_ARRAY_MAP(receiving, 1, struct udppath_receiving);

TOTALS_MAP(UDPPATH_T_SLOTS);

/* An IPv4 header and the 4 bytes after it: the UDP ports when it has no options. */
struct ip_ports {
	struct iphdr ip;
	__u16 ports[2];
};

/*
 * The way of the flow `skb` carries, or -1 when it is not the flow. `l3`: its IPv4 header. One
 * probe read of the header and ports (a second one past IP options); everything else is a
 * field of the skb, a plain load when `direct`. Checks the cheapest-to-fail first.
 */
static __always_inline int way_of(struct sk_buff *skb, unsigned char *l3, bool direct)
{
	struct ip_ports h;
	unsigned char *l4;

	if (!l3 || bpf_probe_read_kernel(&h, sizeof(h), l3))
		return -1;
	if (h.ip.protocol != IPPROTO_UDP || h.ip.version != 4 || h.ip.ihl < 5)
		return -1;
	if (bpf_ntohs(h.ip.frag_off) & IP_OFFSET_MASK_)
		return -1; /* a later fragment: no UDP header */
	l4 = l3 + h.ip.ihl * 4;
	if (l4 + sizeof(h.ports) > FIELD(direct, skb->head, skb, head) + FIELD(direct, skb->tail, skb, tail)) {
		bump_slot(&totals, UDPPATH_T_SHORT);
		return -1;
	}
	if (h.ip.saddr != targ_saddr && (!targ_both || h.ip.saddr != targ_daddr))
		return -1;
	if (h.ip.ihl > 5 && bpf_probe_read_kernel(h.ports, sizeof(h.ports), l4))
		return -1;
	if (h.ip.saddr == targ_saddr && h.ip.daddr == targ_daddr && h.ports[0] == targ_sport && h.ports[1] == targ_dport)
		return UDPPATH_FORWARD;
	if (targ_both && h.ip.saddr == targ_daddr && h.ip.daddr == targ_saddr && h.ports[0] == targ_dport && h.ports[1] == targ_sport)
		return UDPPATH_REVERSE;
	return -1;
}

/* The IPv4 header of an skb whose network header offset is set (leaving, or past ip_rcv). */
static __always_inline unsigned char *network_header(struct sk_buff *skb, bool direct)
{
	__u16 nh;

	if (FIELD(direct, skb->protocol, skb, protocol) != bpf_htons(ETH_P_IP_))
		return NULL;
	nh = FIELD(direct, skb->network_header, skb, network_header);
	if (nh == NO_HEADER_)
		return NULL;
	return FIELD(direct, skb->head, skb, head) + nh;
}

/* netif_receive_skb runs before the network header is reset: skb->data is at L3 there. */
static __always_inline unsigned char *received_header(struct sk_buff *skb, bool direct)
{
	if (FIELD(direct, skb->protocol, skb, protocol) != bpf_htons(ETH_P_IP_))
		return NULL;
	return FIELD(direct, skb->data, skb, data);
}

/* Adds `n` to this CPU's slot `slot` of `totals`. */
static __always_inline void add_slot(__u32 slot, __u64 n)
{
	__u64 *t = bpf_map_lookup_elem(&totals, &slot);

	if (t)
		*t += n;
}

/* The pair's entry in `pairs`, inserted as `init` when new (*inserted then); NULL when full. */
static __always_inline struct udppath_pair_stats *shared_pair(struct udppath_pair *key, struct udppath_pair_stats *init, bool *inserted)
{
	struct udppath_pair_stats *v = bpf_map_lookup_elem(&pairs, key);

	*inserted = false;
	if (v)
		return v;
	if (!bpf_map_update_elem(&pairs, key, init, BPF_NOEXIST)) {
		*inserted = true;
		return NULL;
	}
	return bpf_map_lookup_elem(&pairs, key); /* another CPU inserted it since the lookup */
}

/* Counts one hop `step` of `key` taking `ns` (none from UDPPATH_START) in `v`, shared: atomics. */
static __always_inline void add_shared(struct udppath_pair_stats *v, bool timed, __u64 ns, __u32 step)
{
	if (timed) {
		if (!slot_add_shared(v->slots, log2_slot(ns, UDPPATH_SLOTS), UDPPATH_SLOTS))
			return;
		/* an add of a constant 0 compiles to an atomic OR, which kernels before 5.12 refuse */
		if (ns)
			__sync_fetch_and_add(&v->sum_ns, ns);
		/* racing CPUs on the same pair may lose a max: harmless */
		if (ns > v->max_ns)
			v->max_ns = ns;
	}
	__sync_fetch_and_add(&v->count, 1);
	if (step)
		__sync_fetch_and_add(&v->step_sum, step);
}

/* Counts one hop straight in `pairs` (no entry of this CPU's to use). */
static __always_inline void count_shared(struct udppath_pair *key, __u64 ns, __u32 step, __u64 now)
{
	struct udppath_pair_stats zero = { .first_ns = now };
	struct udppath_pair_stats *v;
	bool inserted;

	v = shared_pair(key, &zero, &inserted);
	if (inserted)
		v = bpf_map_lookup_elem(&pairs, key);
	if (!v) {
		add_slot(UDPPATH_T_NO_ENTRY, 1);
		return;
	}
	add_shared(v, key->from.hook != UDPPATH_START, ns, step);
}

/* Moves the counts of a recent entry into `pairs` (whole, when the pair is new there). */
static __always_inline void move_to_pairs(struct udppath_recent *r)
{
	struct udppath_pair_stats *v;
	bool inserted;

	v = shared_pair(&r->key, &r->v, &inserted);
	if (inserted)
		return;
	if (!v) {
		add_slot(UDPPATH_T_NO_ENTRY, r->v.count);
		return;
	}
	for (int i = 0; i < UDPPATH_SLOTS; i++) {
		if (r->v.slots[i])
			__sync_fetch_and_add(&v->slots[i], r->v.slots[i]);
	}
	__sync_fetch_and_add(&v->count, r->v.count);
	__sync_fetch_and_add(&v->sum_ns, r->v.sum_ns);
	__sync_fetch_and_add(&v->step_sum, r->v.step_sum);
	if (r->v.max_ns > v->max_ns)
		v->max_ns = r->v.max_ns;
	if (r->v.first_ns < v->first_ns)
		v->first_ns = r->v.first_ns;
}

static __always_inline bool same_pair(const struct udppath_pair *a, const struct udppath_pair *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2];
}

/* Which of this CPU's recent entries a pair uses. */
static __always_inline __u32 recent_slot(const struct udppath_pair *k)
{
	__u32 h = k->to.ifindex ^ (k->from.ifindex << 7) ^ ((__u32)k->to.hook << 14) ^ ((__u32)k->from.hook << 18) ^ ((__u32)k->to.way << 22);

	return (h * 0x9E3779B1u) >> 28; /* UDPPATH_RECENT == 16 */
}

/*
 * Counts a packet's hop `to` after `from` (UDPPATH_START: its first hop): the pair's count and
 * time `ns` (none from the start), and the hop's own counts. In this CPU's recent entry of the
 * pair, without atomics (a program nested on this CPU sees it busy and counts in `pairs`); the
 * entry's previous pair moves to `pairs` first. The probe adds the entries left after detach.
 */
static __always_inline void count_pair(struct udppath_hop *from, struct udppath_hop *to, __u64 ns, __u32 step, __u64 now)
{
	struct udppath_pair key = { .from = *from, .to = *to };
	__u32 base = bpf_get_smp_processor_id() * UDPPATH_RECENT, s = recent_slot(&key), i = base + s;
	struct udppath_recent *r = bpf_map_lookup_elem(&recent, &i);
	__u32 slot;

	/* Two of a flow's few pairs hashing to one slot would move counts to `pairs` at every
	 * packet: the neighbour slot takes the second when it is free or the pair's own. */
	if (r && !r->busy && r->v.count && !same_pair(&r->key, &key)) {
		struct udppath_recent *other;

		i = base + (s ^ 1);
		other = bpf_map_lookup_elem(&recent, &i);
		if (other && !other->busy && (!other->v.count || same_pair(&other->key, &key)))
			r = other;
	}

	if (!r || r->busy) {
		count_shared(&key, ns, step, now);
		return;
	}
	r->busy = 1;
	barrier();
	if (r->v.count && !same_pair(&r->key, &key))
		move_to_pairs(r);
	if (!r->v.count || !same_pair(&r->key, &key)) {
		__builtin_memset(&r->v, 0, sizeof(r->v));
		r->key = key;
		r->v.first_ns = now;
	}
	if (from->hook != UDPPATH_START) {
		slot = log2_slot(ns, UDPPATH_SLOTS);
		barrier_var(slot);
		if (slot < UDPPATH_SLOTS)
			r->v.slots[slot]++;
		r->v.sum_ns += ns;
		if (ns > r->v.max_ns)
			r->v.max_ns = ns;
	}
	r->v.count++;
	r->v.step_sum += step;
	barrier();
	r->busy = 0;
}

/* Adds `n` drops of `d` to `drops`; a full map counts them in UDPPATH_T_NO_ENTRY. */
static __always_inline void add_drops(struct udppath_drop *d, __u64 n)
{
	if (!count_key_by(&drops, d, n))
		add_slot(UDPPATH_T_NO_ENTRY, n);
}

static __always_inline bool same_drop(const struct udppath_drop *a, const struct udppath_drop *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2];
}

/* Counts a drop in this CPU's recent drop entry, as count_pair its pairs: the same key as the
 * CPU's last drop costs an increment; another one moves the entry's count to `drops` first. */
static __always_inline void count_drop(struct udppath_drop *d)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct udppath_recent_drop *r = bpf_map_lookup_elem(&recent_drops, &cpu);

	if (!r || r->busy) {
		add_drops(d, 1);
		return;
	}
	r->busy = 1;
	barrier();
	if (r->count && !same_drop(&r->key, d)) {
		add_drops(&r->key, r->count);
		r->count = 0;
	}
	if (!r->count)
		r->key = *d;
	r->count++;
	barrier();
	r->busy = 0;
}

static __always_inline void sample(struct udppath_packet *p, __u32 len, __u32 reason, __u64 location)
{
	struct udppath_event *e;

	if (!p->sampled)
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		bump_slot(&totals, UDPPATH_T_LOST_EVENTS);
		return;
	}
	e->ns = p->ns;
	e->first_ns = p->first_ns;
	e->location = location;
	e->hop = p->last;
	e->step = p->step;
	e->reason = reason;
	e->len = len;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void hop_at(struct udppath_hop *h, __u8 hook, int way, struct net_device *dev, bool direct)
{
	h->hook = hook;
	h->way = way;
	if (dev) {
		h->ifindex = FIELD(direct, dev->ifindex, dev, ifindex);
		h->netns = FIELD(direct, dev->nd_net.net->ns.inum, dev, nd_net.net, ns.inum);
	}
}

/*
 * Counts the hop `p->last` of the packet followed as `key`: after the hop it was last seen at
 * (the pair's time), or as a new packet when `starts` (else false: not followed). The packet's
 * entry is updated in place, not replaced, and marked ended by a hop that `ends` it; a new one
 * is inserted unless this hop ends it.
 */
static __always_inline bool step_packet(__u64 key, struct udppath_packet *p, bool starts, bool ends, __u64 now)
{
	struct udppath_hop start = { .hook = UDPPATH_START };
	__u32 idx = skb_slot(key, UDPPATH_PACKETS);
	struct udppath_slot *e = bpf_map_lookup_elem(&packets, &idx);
	struct udppath_packet *seen = e && e->skb == key ? &e->p : NULL;

	if (seen && seen->ns && (__s64)(now - seen->ns) < (__s64)stale_ns) {
		/* stamped on two CPUs a hair apart: no time between them */
		p->first_ns = seen->first_ns;
		p->sampled = seen->sampled;
		p->step = seen->step + 1;
		count_pair(&seen->last, &p->last, (__s64)(now - seen->ns) > 0 ? now - seen->ns : 0, p->step, now);
	} else if (!starts) {
		return false;
	} else {
		p->first_ns = now;
		if (sampled < sample_packets) {
			__sync_fetch_and_add(&sampled, 1);
			p->sampled = 1;
		}
		count_pair(&start, &p->last, 0, 0, now);
	}
	p->ns = now;
	if (seen) {
		*seen = *p;
		if (ends)
			seen->ns = 0;
	} else if (!ends && e) {
		e->skb = key;
		e->p = *p;
	}
	return true;
}

/*
 * One hop of the flow at a device hook or a free: `l3` is the skb's IPv4 header (NULL: not
 * IPv4), `dev` the device (NULL: none). A consume only ends a packet already followed (a socket
 * frees its datagrams long after they were queued, see on_enqueue); a drop may be its only hop.
 */
static __always_inline int on_hop(struct sk_buff *skb, unsigned char *l3, struct net_device *dev, __u8 hook, __u32 reason, __u64 location, bool direct)
{
	bool ends = hook == UDPPATH_DROP || hook == UDPPATH_CONSUME;
	__u64 key = SKB_KEY(skb, direct, &packets);
	struct udppath_packet p = {};
	int way = way_of(skb, l3, direct);

	if (way < 0)
		return 0;
	hop_at(&p.last, hook, way, dev, direct);
	if (!step_packet(key, &p, hook != UDPPATH_CONSUME, ends, bpf_ktime_get_ns()))
		return 0;
	if (hook == UDPPATH_DROP) {
		struct udppath_drop d = { .at = p.last, .reason = reason, .location = location };

		count_drop(&d);
	}
	sample(&p, FIELD(direct, skb->len, skb, len), reason, location);
	return 0;
}

/* netif_receive_skb: the skb this CPU is receiving, which sk_data_ready then queues (the
 * receive runs to the socket in the same softirq). */
static __always_inline int on_receive(struct sk_buff *skb, bool direct)
{
	__u32 zero = 0;
	struct udppath_receiving *cur = bpf_map_lookup_elem(&receiving, &zero);

	if (cur) {
		cur->skb = (__u64)skb;
		cur->key = SKB_KEY(skb, direct, &packets);
	}
	return on_hop(skb, received_header(skb, direct), FIELD(direct, skb->dev, skb, dev), UDPPATH_RECEIVE, 0, 0, direct);
}

/* Appends a datagram to a followed socket's queue (`p`: the flow's; NULL: another flow's). */
static __always_inline void push_queued(struct udppath_sockq *q, struct udppath_packet *p)
{
	struct udppath_queued *e;

	if (q->tail - q->head >= UDPPATH_QUEUED) {
		bump_slot(&totals, UDPPATH_T_QUEUE_FULL);
		return;
	}
	e = &q->q[q->tail & (UDPPATH_QUEUED - 1)];
	e->ns = p ? p->ns : 0;
	e->first_ns = p ? p->first_ns : 0;
	e->step = p ? p->step : 0;
	e->sampled = p ? p->sampled : 0;
	q->tail++;
}

/*
 * sk_data_ready: a datagram was queued on `sk`. When it is the flow's (the skb being received on
 * this CPU, for this socket's port), the packet's hop is counted and it moves to the socket's
 * queue, where its read finds it. Other datagrams queued on a followed socket hold their place.
 * The skb comes from a map: its fields are probe reads.
 */
static __always_inline int on_enqueue(struct sock *sk, bool direct)
{
	static const struct udppath_sockq zero_q;
	__u64 sk_key = (__u64)sk, key;
	struct udppath_packet p = {};
	struct udppath_sockq *q;
	struct sk_buff *skb;
	__u32 zero = 0;
	struct udppath_receiving *cur;
	__u16 port;
	int way;

	if (FIELD(direct, sk->sk_protocol, sk, sk_protocol) != IPPROTO_UDP)
		return 0;
	cur = bpf_map_lookup_elem(&receiving, &zero);
	skb = cur ? (struct sk_buff *)cur->skb : NULL;
	key = cur ? cur->key : 0;
	if (cur)
		cur->skb = cur->key = 0;
	q = bpf_map_lookup_elem(&sockets, &sk_key);
	way = skb ? way_of(skb, network_header(skb, false), false) : -1;
	port = way == UDPPATH_FORWARD ? targ_dport : targ_sport;
	if (way < 0 || FIELD(direct, sk->__sk_common.skc_num, sk, __sk_common.skc_num) != bpf_ntohs(port)) {
		if (q)
			push_queued(q, NULL);
		return 0;
	}
	/* UDP has cleared skb->dev by now: the hop is the socket's, in its namespace */
	hop_at(&p.last, UDPPATH_ENQUEUE, way, NULL, direct);
	p.last.netns = FIELD(direct, sk->__sk_common.skc_net.net->ns.inum, sk, __sk_common.skc_net.net, ns.inum);
	step_packet(key, &p, true, true, bpf_ktime_get_ns());
	sample(&p, BPF_CORE_READ(skb, len), 0, 0);
	if (!q) {
		q = insert_entry(&sockets, &sk_key, &zero_q, &totals, UDPPATH_T_NO_ENTRY);
		if (!q)
			return 0;
	}
	q->at = p.last;
	push_queued(q, &p);
	return 0;
}

/* sock_recv_length: the application read `ret` bytes from `sk`: the oldest datagram queued. */
static __always_inline int on_read(struct sock *sk, int ret, int flags, bool direct)
{
	__u64 sk_key = (__u64)sk, now;
	struct udppath_packet p = {};
	struct udppath_queued *e;
	struct udppath_sockq *q;

	if (ret < 0 || (flags & MSG_PEEK_))
		return 0;
	q = bpf_map_lookup_elem(&sockets, &sk_key);
	if (!q || q->head == q->tail)
		return 0;
	e = &q->q[q->head & (UDPPATH_QUEUED - 1)];
	q->head++;
	if (!e->ns)
		return 0;
	now = bpf_ktime_get_ns();
	p.last.hook = UDPPATH_READ;
	p.last.way = q->at.way;
	p.last.netns = FIELD(direct, sk->__sk_common.skc_net.net->ns.inum, sk, __sk_common.skc_net.net, ns.inum);
	p.first_ns = e->first_ns;
	p.sampled = e->sampled;
	p.step = e->step + 1;
	p.ns = now;
	count_pair(&q->at, &p.last, (__s64)(now - e->ns) > 0 ? now - e->ns : 0, p.step, now);
	sample(&p, ret, 0, 0);
	return 0;
}

/* A hop of `skb` (not a drop) through `dev` at `hook`. */
static __always_inline int skb_hop(struct sk_buff *skb, struct net_device *dev, __u32 hook, bool direct)
{
	return on_hop(skb, network_header(skb, direct), dev, hook, 0, 0, direct);
}

/* A hop of `skb` through its own device. */
static __always_inline int skb_dev_hop(struct sk_buff *skb, __u32 hook, bool direct)
{
	return skb_hop(skb, FIELD(direct, skb->dev, skb, dev), hook, direct);
}

/* qdisc_dequeue passes a NULL skb when nothing was dequeued. */
static __always_inline int on_dequeue(struct sk_buff *skb, const struct netdev_queue *txq, bool direct)
{
	if (!skb)
		return 0;
	return skb_hop(skb, txq ? FIELD(direct, txq->dev, txq, dev) : NULL, UDPPATH_DEQUEUE, direct);
}

static __always_inline int on_drop(struct sk_buff *skb, __u32 reason, void *location, bool direct)
{
	return on_hop(skb, network_header(skb, direct), FIELD(direct, skb->dev, skb, dev), UDPPATH_DROP, reason, (__u64)location, direct);
}

/* tp_btf and raw_tp programs udppath_<hook>_btf and udppath_<hook>_raw. */
#define UDPPATH_PROGS(hook, tp, call, args...) \
	BTF_RAW_PROGS(udppath_##hook##_btf, udppath_##hook##_raw, tp, call, args)

UDPPATH_PROGS(queue, net_dev_queue, skb_dev_hop(skb, UDPPATH_QUEUE, direct), struct sk_buff *skb)
UDPPATH_PROGS(dequeue, qdisc_dequeue, on_dequeue(skb, txq, direct),
	      struct Qdisc *q, const struct netdev_queue *txq, int n, struct sk_buff *skb)
UDPPATH_PROGS(xmit, net_dev_start_xmit, skb_hop(skb, dev, UDPPATH_XMIT, direct), struct sk_buff *skb, struct net_device *dev)
UDPPATH_PROGS(receive, netif_receive_skb, on_receive(skb, direct), struct sk_buff *skb)
UDPPATH_PROGS(enqueue, sk_data_ready, on_enqueue(sk, direct), struct sock *sk)
UDPPATH_PROGS(read, sock_recv_length, on_read(sk, ret, flags, direct), struct sock *sk, int ret, int flags)
UDPPATH_PROGS(drop, kfree_skb, on_drop(skb, reason, location, direct),
	      struct sk_buff *skb, void *location, enum skb_drop_reason reason)
UDPPATH_PROGS(consume, consume_skb, skb_dev_hop(skb, UDPPATH_CONSUME, direct), struct sk_buff *skb)

/* Classic tracepoints: the skb address (and the drop's reason and location) from the record. */
SKB_TRACEPOINT(udppath_queue_tp, net, net_dev_queue, trace_event_raw_net_dev_template, skb_dev_hop(skb, UDPPATH_QUEUE, false))
SKB_TRACEPOINT(udppath_dequeue_tp, qdisc, qdisc_dequeue, trace_event_raw_qdisc_dequeue, on_dequeue(skb, args->txq, false))
SKB_TRACEPOINT(udppath_xmit_tp, net, net_dev_start_xmit, trace_event_raw_net_dev_start_xmit, skb_dev_hop(skb, UDPPATH_XMIT, false))
SKB_TRACEPOINT(udppath_receive_tp, net, netif_receive_skb, trace_event_raw_net_dev_template, on_receive(skb, false))

SEC("?tracepoint/sock/sk_data_ready")
int udppath_enqueue_tp(struct trace_event_raw_sk_data_ready *args)
{
	return on_enqueue((struct sock *)args->skaddr, false);
}

SEC("?tracepoint/sock/sock_recv_length")
int udppath_read_tp(struct trace_event_raw_sock_msg_length *args)
{
	return on_read((struct sock *)args->sk, args->ret, args->flags, false);
}

SKB_TRACEPOINT(udppath_drop_tp, skb, kfree_skb, trace_event_raw_kfree_skb, on_drop(skb, args->reason, args->location, false))
SKB_TRACEPOINT(udppath_consume_tp, skb, consume_skb, trace_event_raw_consume_skb, skb_dev_hop(skb, UDPPATH_CONSUME, false))

char LICENSE[] SEC("license") = "GPL";
