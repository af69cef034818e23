// SPDX-License-Identifier: GPL-2.0
/* other.qdisc-dequeue: every dequeue from a device's root qdisc (qdisc:qdisc_dequeue, which
 * dequeue_skb() fires once per call, also when nothing came out), aggregated in the kernel per
 * {device, netns, qdisc handle, parent}: calls, packets dequeued (bulk dequeues included),
 * empty calls, a log2 histogram of packets per call, the queue length and backlog left behind,
 * the qdisc's requeue counter, and skbs with a GSO size but no GSO type.
 *
 * Three attach flavours of the same handler, chosen at load by the probe (probes/lib/netdev.ts):
 * raw_tp (with a cached minimal BTF it loads in a few ms), tp_btf (typed arguments) and the
 * classic tracepoint. The handler reads through BPF_CORE_READ only, which all three allow;
 * tp_btf loads by default, the others only when asked ("?"). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "other.qdisc-dequeue.h"
#include "log2.h"

/* Filters, set before load: a device name (empty: any) and a namespace inode (0: any). */
const volatile char targ_dev[NETDEV_NAME_LEN] = {};
const volatile __u32 targ_netns = 0;

HASH_MAP(qdiscs, QDEQ_MAX_ENTRIES, struct qdeq_key, struct qdeq_value);

TOTALS_MAP(QDEQ_TOTAL_SLOTS);

static __always_inline struct qdeq_value *value_of(struct qdeq_key *key, struct Qdisc *q, __u32 requeues)
{
	struct qdeq_value *v, init = {};

	v = bpf_map_lookup_elem(&qdiscs, key);
	if (v)
		return v;
	init.requeues_first = requeues;
	BPF_CORE_READ_STR_INTO(&init.kind, q, ops, id);
	return insert_entry(&qdiscs, key, &init, &totals, QDEQ_TOTAL_UNKEYED);
}

/* The tracepoint passes packets = 1 with a NULL skb when nothing was dequeued. */
static __always_inline int on_dequeue(struct Qdisc *q, int packets, struct sk_buff *skb)
{
	struct qdeq_key key = {};
	struct qdeq_value *v;
	__u32 qlen, backlog, requeues, n;

	if (!qdisc_netdev(q, &key.dev) || !netdev_matches(&key.dev, targ_dev, targ_netns))
		return 0;
	key.handle = BPF_CORE_READ(q, handle);
	key.parent = BPF_CORE_READ(q, parent);
	/* Lockless qdiscs (pfifo_fast) keep per-CPU counts: these read 0 there. */
	qlen = BPF_CORE_READ(q, q.qlen);
	backlog = BPF_CORE_READ(q, qstats.backlog);
	requeues = BPF_CORE_READ(q, qstats.requeues);
	n = skb && packets > 0 ? packets : 0;
	bump_slot(&totals, QDEQ_TOTAL_SEEN);

	v = value_of(&key, q, requeues);
	if (!v)
		return 0;
	__sync_fetch_and_add(&v->slots[log2_slot(n, QDEQ_SLOTS)], 1);
	__sync_fetch_and_add(&v->calls, 1);
	__sync_fetch_and_add(&v->packets, n);
	if (!n)
		__sync_fetch_and_add(&v->empty, 1);
	__sync_fetch_and_add(&v->qlen_sum, qlen);
	__sync_fetch_and_add(&v->backlog_sum, backlog);
	/* Racy only between CPUs dequeuing the same qdisc at once, which its lock prevents. */
	if (qlen > v->qlen_max)
		v->qlen_max = qlen;
	if (backlog > v->backlog_max)
		v->backlog_max = backlog;
	v->requeues_last = requeues;
	if (skb && skb_gso_anomaly(skb))
		__sync_fetch_and_add(&v->gso_anomalies, 1);
	return 0;
}

BTF_HANDLERS(qdisc_dequeue, qdisc_dequeue, on_dequeue(q, packets, skb), struct Qdisc *q, const struct netdev_queue *txq, int packets, struct sk_buff *skb)

SEC("?tracepoint/qdisc/qdisc_dequeue")
int qdisc_dequeue_tracepoint(struct trace_event_raw_qdisc_dequeue *args)
{
	return on_dequeue(args->qdisc, args->packets, (struct sk_buff *)args->skbaddr);
}

char LICENSE[] SEC("license") = "GPL";
