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
 * Each stage's latency (since the packet's previous stamp) goes to a per-CPU log-linear
 * histogram (lathist.h); a stage a packet skips (no qdisc on a noqueue device, no RX entry
 * tracepoint on its path) just is not stamped. The skb tables are LRU hashes, so packets that
 * never complete cannot fill them; the probe counts what was evicted from the totals.
 *
 * The same handlers in three flavours (raw_tp, tp_btf, classic tracepoints), chosen at load. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "count.h"
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

/* Two tables: a veth hands the very skb it transmits to its peer's receive path. */
LRU_HASH_MAP(tx_skbs, HOSTLAT_SKBS, __u64, struct hostlat_skb);

LRU_HASH_MAP(rx_skbs, HOSTLAT_SKBS, __u64, struct hostlat_skb);

PERCPU_ARRAY_MAP(hists, HOSTLAT_HISTS, struct lat_hist);

HASH_MAP(drops, HOSTLAT_DROP_KEYS, struct hostlat_drop, __u64);

/* The tracked skb this CPU's netif_receive_skb is processing: its socket's sk_data_ready
 * follows in the same call. */
PERCPU_ARRAY_MAP(rx_current, 1, __u64);

TOTALS_MAP(HOSTLAT_C_SLOTS);

static __always_inline void count_dir(__u32 dir, __u32 counter)
{
	bump_slot(&totals, HOSTLAT_C_DIR_BASE + dir * HOSTLAT_C_PER_DIR + counter);
}

static __always_inline void record(__u32 hist, __u64 ns)
{
	struct lat_hist *h = bpf_map_lookup_elem(&hists, &hist);

	if (h)
		lathist_add(h, ns);
}

static __always_inline void *skbs_of(__u32 dir)
{
	return dir == HOSTLAT_TX ? (void *)&tx_skbs : (void *)&rx_skbs;
}

/* Whether the device passes the device filter; its ifindex in *ifindex. */
static __always_inline bool dev_match(struct net_device *dev, __u32 *ifindex)
{
	if (!dev)
		return false;
	*ifindex = BPF_CORE_READ(dev, ifindex);
	if (targ_ifindex && *ifindex != targ_ifindex)
		return false;
	if (targ_netns && BPF_CORE_READ(dev, nd_net.net, ns.inum) != targ_netns)
		return false;
	return true;
}

/* Whether the IPv4 packet in `skb` passes the filters: TX from its network header, RX from
 * skb->data (at the network header once eth_type_trans ran; the network header offset is set
 * only later, in __netif_receive_skb_core). Its local port in *lport. */
static __always_inline bool packet_match(struct sk_buff *skb, __u32 dir, __u16 *lport, __u8 *proto)
{
	unsigned char *l3;
	struct iphdr ip;
	__u16 ports[2] = {};

	if (BPF_CORE_READ(skb, protocol) != bpf_htons(ETH_P_IP_))
		return false;
	if (dir == HOSTLAT_TX)
		l3 = BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, network_header);
	else
		l3 = BPF_CORE_READ(skb, data);
	if (bpf_probe_read_kernel(&ip, sizeof(ip), l3) || ip.version != 4 || ip.ihl < 5)
		return false;
	if (!ipv4_tuple_matches(&ip, targ_saddr, targ_daddr, targ_proto))
		return false;
	*proto = ip.protocol;
	*lport = 0;
	if ((ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP) && !(bpf_ntohs(ip.frag_off) & IP_OFFSET_MASK_))
		bpf_probe_read_kernel(ports, sizeof(ports), l3 + ip.ihl * 4);
	else if (targ_sport || targ_dport)
		return false; /* no ports to match */
	if ((targ_sport && bpf_ntohs(ports[0]) != targ_sport) || (targ_dport && bpf_ntohs(ports[1]) != targ_dport))
		return false;
	*lport = bpf_ntohs(ports[1]);
	return true;
}

/* A packet's first stamp in direction `dir`, at `stage`: filtered, then tracked. */
static __always_inline void start(struct sk_buff *skb, struct net_device *dev, __u32 dir, __u32 stage, __u64 now)
{
	struct hostlat_skb fresh = { .first_ts = now, .last_ts = now, .stage = stage };
	struct hostlat_skb *old;
	__u64 key = (__u64)skb;

	if (!(targ_dirs & (1 << dir)))
		return;
	if (!dev_match(dev, &fresh.ifindex) || !packet_match(skb, dir, &fresh.lport, &fresh.proto))
		return;
	old = bpf_map_lookup_elem(skbs_of(dir), &key);
	/* Transmitted again from inside a driver (a bridge, VLAN or bond over the device): the
	 * inner device's path replaces the outer one. Otherwise the old packet left unseen. */
	if (old && !(dir == HOSTLAT_TX && old->stage == HOSTLAT_TX_START))
		count_dir(dir, HOSTLAT_C_REPLACED);
	bpf_map_update_elem(skbs_of(dir), &key, &fresh, BPF_ANY);
	bump_slot(&totals, stage);
	count_dir(dir, HOSTLAT_C_STARTED);
}

/* A later stamp of a tracked packet: its latency since the previous one. Stages run forward
 * only: a stage seen again (requeued, received again after a VLAN untag) is ignored. Returns
 * the entry, or NULL when the skb is not tracked or the stage is not new. */
static __always_inline struct hostlat_skb *stamp(__u64 key, __u32 dir, __u32 stage, __u64 now)
{
	struct hostlat_skb *e = bpf_map_lookup_elem(skbs_of(dir), &key);

	if (!e || e->stage >= stage)
		return NULL;
	record(stage, now - e->last_ts);
	bump_slot(&totals, stage);
	e->last_ts = now;
	e->stage = stage;
	return e;
}

/* The last stage: the total, and the packet leaves the table. */
static __always_inline void finish(__u64 key, __u32 dir, struct hostlat_skb *e, __u64 now)
{
	__u64 total = now - e->first_ts;

	record(HOSTLAT_STAGES + dir, total);
	count_dir(dir, HOSTLAT_C_DONE);
	if (threshold_ns && (__s64)total >= (__s64)threshold_ns)
		count_dir(dir, HOSTLAT_C_SLOW);
	bpf_map_delete_elem(skbs_of(dir), &key);
}

static __always_inline int on_queue(struct sk_buff *skb)
{
	start(skb, BPF_CORE_READ(skb, dev), HOSTLAT_TX, HOSTLAT_TX_QUEUE, bpf_ktime_get_ns());
	return 0;
}

static __always_inline int on_enqueue(struct sk_buff *skb)
{
	stamp((__u64)skb, HOSTLAT_TX, HOSTLAT_TX_ENQUEUE, bpf_ktime_get_ns());
	return 0;
}

/* qdisc_dequeue: `skb` heads the list of `packets` skbs dequeued (NULL: none). */
static __always_inline int on_dequeue(int packets, struct sk_buff *skb)
{
	__u64 now = bpf_ktime_get_ns();

	for (int i = 0; i < HOSTLAT_BULK && skb && i < packets; i++) {
		stamp((__u64)skb, HOSTLAT_TX, HOSTLAT_TX_DEQUEUE, now);
		skb = BPF_CORE_READ(skb, next);
	}
	return 0;
}

static __always_inline int on_start_xmit(struct sk_buff *skb)
{
	stamp((__u64)skb, HOSTLAT_TX, HOSTLAT_TX_START, bpf_ktime_get_ns());
	return 0;
}

/* net_dev_xmit: the skb may be freed already; only its address is used. */
static __always_inline int on_xmit(struct sk_buff *skb, int rc)
{
	__u64 key = (__u64)skb, now = bpf_ktime_get_ns();
	struct hostlat_skb *e;

	if (rc != 0) {
		if (bpf_map_lookup_elem(&tx_skbs, &key)) {
			count_dir(HOSTLAT_TX, HOSTLAT_C_ENDED);
			bpf_map_delete_elem(&tx_skbs, &key);
		}
		return 0;
	}
	e = stamp(key, HOSTLAT_TX, HOSTLAT_TX_DONE, now);
	if (e)
		finish(key, HOSTLAT_TX, e, now);
	return 0;
}

/* The receive entry tracepoints: a driver (or veth, loopback) hands the packet to the stack. */
static __always_inline int on_rx_entry(struct sk_buff *skb)
{
	start(skb, BPF_CORE_READ(skb, dev), HOSTLAT_RX, HOSTLAT_RX_ENTRY, bpf_ktime_get_ns());
	return 0;
}

static __always_inline int on_receive(struct sk_buff *skb)
{
	__u64 key = (__u64)skb, now = bpf_ktime_get_ns();
	__u32 zero = 0;
	__u64 *cur;

	if (!stamp(key, HOSTLAT_RX, HOSTLAT_RX_RECEIVE, now)) {
		/* no entry stamp (a path without one): the packet starts here */
		if (!bpf_map_lookup_elem(&rx_skbs, &key))
			start(skb, BPF_CORE_READ(skb, dev), HOSTLAT_RX, HOSTLAT_RX_RECEIVE, now);
	}
	cur = bpf_map_lookup_elem(&rx_current, &zero);
	if (cur)
		*cur = bpf_map_lookup_elem(&rx_skbs, &key) ? key : 0;
	return 0;
}

/* sk_data_ready: a socket got data. It is the current packet's when the socket's protocol and
 * local port are the packet's (UDP, TCP). */
static __always_inline int on_data_ready(struct sock *sk)
{
	struct hostlat_skb *e;
	__u32 zero = 0;
	__u64 *cur, key, now;

	cur = bpf_map_lookup_elem(&rx_current, &zero);
	if (!cur || !*cur || !sk)
		return 0;
	key = *cur;
	e = bpf_map_lookup_elem(&rx_skbs, &key);
	if (!e || e->stage != HOSTLAT_RX_RECEIVE || !e->lport)
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != e->proto || BPF_CORE_READ(sk, __sk_common.skc_num) != e->lport)
		return 0;
	*cur = 0;
	now = bpf_ktime_get_ns();
	e = stamp(key, HOSTLAT_RX, HOSTLAT_RX_SOCKET, now);
	if (e)
		finish(key, HOSTLAT_RX, e, now);
	return 0;
}

/* consume_skb / kfree_skb: the end of a tracked skb still on its way. */
static __always_inline void on_free(struct sk_buff *skb, bool drop, __u32 reason)
{
	__u64 key = (__u64)skb;
	struct hostlat_skb *e;
	__u32 zero = 0;
	__u64 *cur;

	for (__u32 dir = 0; dir < HOSTLAT_DIRS; dir++) {
		e = bpf_map_lookup_elem(skbs_of(dir), &key);
		if (!e)
			continue;
		if (drop) {
			struct hostlat_drop d = { .reason = reason, .dir = dir, .stage = e->stage };

			count_key(&drops, &d);
			count_dir(dir, HOSTLAT_C_DROPPED);
		} else {
			count_dir(dir, HOSTLAT_C_ENDED);
		}
		bpf_map_delete_elem(skbs_of(dir), &key);
	}
	cur = bpf_map_lookup_elem(&rx_current, &zero);
	if (cur && *cur == key)
		*cur = 0;
}

static __always_inline int on_consume(struct sk_buff *skb)
{
	on_free(skb, false, 0);
	return 0;
}

static __always_inline int on_kfree(struct sk_buff *skb, __u32 reason)
{
	on_free(skb, true, reason);
	return 0;
}

/* raw_tp and tp_btf: the same typed arguments (raw_tp reads them with CO-RE probe reads). */
#define HOSTLAT_BTF_PROGS(stem, tp, call, ...)                                  \
	SEC("?raw_tp/" #tp)                                                     \
	int BPF_PROG(hostlat_##stem##_raw, __VA_ARGS__) { return call; }        \
	SEC("?tp_btf/" #tp)                                                     \
	int BPF_PROG(hostlat_##stem##_btf, __VA_ARGS__) { return call; }

HOSTLAT_BTF_PROGS(queue, net_dev_queue, on_queue(skb), struct sk_buff *skb)
HOSTLAT_BTF_PROGS(enqueue, qdisc_enqueue, on_enqueue(skb), struct Qdisc *q, const struct netdev_queue *txq, struct sk_buff *skb)
HOSTLAT_BTF_PROGS(dequeue, qdisc_dequeue, on_dequeue(packets, skb), struct Qdisc *q, const struct netdev_queue *txq, int packets, struct sk_buff *skb)
HOSTLAT_BTF_PROGS(start, net_dev_start_xmit, on_start_xmit(skb), struct sk_buff *skb)
HOSTLAT_BTF_PROGS(xmit, net_dev_xmit, on_xmit(skb, rc), struct sk_buff *skb, int rc)
HOSTLAT_BTF_PROGS(gro, napi_gro_receive_entry, on_rx_entry(skb), struct sk_buff *skb)
HOSTLAT_BTF_PROGS(rcventry, netif_receive_skb_entry, on_rx_entry(skb), struct sk_buff *skb)
HOSTLAT_BTF_PROGS(rxentry, netif_rx_entry, on_rx_entry(skb), struct sk_buff *skb)
HOSTLAT_BTF_PROGS(receive, netif_receive_skb, on_receive(skb), struct sk_buff *skb)
HOSTLAT_BTF_PROGS(ready, sk_data_ready, on_data_ready((struct sock *)sk), const struct sock *sk)
HOSTLAT_BTF_PROGS(consume, consume_skb, on_consume(skb), struct sk_buff *skb)
HOSTLAT_BTF_PROGS(kfree, kfree_skb, on_kfree(skb, reason), struct sk_buff *skb, void *location, enum skb_drop_reason reason)

/* Classic tracepoints: the skb (or sock) address from the record. */
#define HOSTLAT_TP_PROG(stem, category, tp, type, call)                         \
	SEC("?tracepoint/" #category "/" #tp)                                   \
	int hostlat_##stem##_tp(type *args) { return call; }

#define SKB_ (struct sk_buff *)args->skbaddr
HOSTLAT_TP_PROG(queue, net, net_dev_queue, struct trace_event_raw_net_dev_template, on_queue(SKB_))
HOSTLAT_TP_PROG(enqueue, qdisc, qdisc_enqueue, struct trace_event_raw_qdisc_enqueue, on_enqueue(SKB_))
HOSTLAT_TP_PROG(dequeue, qdisc, qdisc_dequeue, struct trace_event_raw_qdisc_dequeue, on_dequeue(args->packets, SKB_))
HOSTLAT_TP_PROG(start, net, net_dev_start_xmit, struct trace_event_raw_net_dev_start_xmit, on_start_xmit(SKB_))
HOSTLAT_TP_PROG(xmit, net, net_dev_xmit, struct trace_event_raw_net_dev_xmit, on_xmit(SKB_, args->rc))
HOSTLAT_TP_PROG(gro, net, napi_gro_receive_entry, struct trace_event_raw_net_dev_rx_verbose_template, on_rx_entry(SKB_))
HOSTLAT_TP_PROG(rcventry, net, netif_receive_skb_entry, struct trace_event_raw_net_dev_rx_verbose_template, on_rx_entry(SKB_))
HOSTLAT_TP_PROG(rxentry, net, netif_rx_entry, struct trace_event_raw_net_dev_rx_verbose_template, on_rx_entry(SKB_))
HOSTLAT_TP_PROG(receive, net, netif_receive_skb, struct trace_event_raw_net_dev_template, on_receive(SKB_))
HOSTLAT_TP_PROG(ready, sock, sk_data_ready, struct trace_event_raw_sk_data_ready, on_data_ready((struct sock *)args->skaddr))
HOSTLAT_TP_PROG(consume, skb, consume_skb, struct trace_event_raw_consume_skb, on_consume(SKB_))
HOSTLAT_TP_PROG(kfree, skb, kfree_skb, struct trace_event_raw_kfree_skb, on_kfree(SKB_, args->reason))

char LICENSE[] SEC("license") = "GPL";
