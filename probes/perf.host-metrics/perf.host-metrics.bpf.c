// SPDX-License-Identifier: GPL-2.0
/* perf.host-metrics: where the host's CPUs spend softirq time and which CPU handles the packets.
 *
 * irq:softirq_entry/softirq_exit time every softirq run per CPU and vector (count, total,
 * max, log2 µs histogram); net:netif_receive_skb counts the packets each CPU receives and
 * net:net_dev_xmit the packets each CPU hands to a driver, optionally of one device. All in
 * per-CPU arrays: no atomics, no locks, one value per CPU for the probe.
 *
 * Three attach flavours of the same four handlers, chosen at load by the probe: raw_tp (with a
 * cached minimal BTF for the CO-RE reads), tp_btf, the classic tracepoints. All but tp_btf
 * start with autoload off ("?" prefix). At net_dev_xmit the skb may be freed already: only the
 * device and the length argument are read there. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "netdev.h"
#include "perf.host-metrics.h"
#include "log2.h"

/* Filters of the packet counts, set before load: a device name (empty: any), a namespace inode
 * (0: any), directions (bit HM_RX, bit HM_TX). Softirq time is never filtered. */
const volatile char targ_dev[NETDEV_NAME_LEN] = {};
const volatile __u32 targ_netns = 0;
const volatile __u8 targ_dirs = 3;

/* When the softirq of each vector started on this CPU (a vector does not nest on one CPU). */
PERCPU_ARRAY_MAP(started, HM_VECTORS, __u64);

PERCPU_ARRAY_MAP(softirqs, HM_VECTORS, struct hm_softirq);

PERCPU_ARRAY_MAP(packets, HM_DIRS, struct hm_packets);

TOTALS_MAP(HM_T_SLOTS);

static __always_inline int on_softirq_entry(__u32 vec)
{
	__u64 *t = bpf_map_lookup_elem(&started, &vec);

	if (t)
		*t = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int on_softirq_exit(__u32 vec)
{
	struct hm_softirq *v;
	__u64 *t, ns;

	t = bpf_map_lookup_elem(&started, &vec);
	v = bpf_map_lookup_elem(&softirqs, &vec);
	if (!t || !v)
		return 0;
	if (!*t) {
		bump_slot(&totals, HM_T_EXIT_UNPAIRED);
		return 0;
	}
	ns = bpf_ktime_get_ns() - *t;
	*t = 0;
	v->count++;
	v->total_ns += ns;
	if (ns > v->max_ns)
		v->max_ns = ns;
	v->slots[log2_slot(ns / 1000, HM_SLOTS)]++;
	return 0;
}

static __always_inline struct hm_packets *counts_of(__u32 dir)
{
	if (!(targ_dirs & (1 << dir)))
		return NULL;
	return bpf_map_lookup_elem(&packets, &dir);
}

static __always_inline int on_receive(struct sk_buff *skb)
{
	struct netdev_id id = {};
	struct hm_packets *v;
	struct net_device *dev;

	if (!skb)
		return 0;
	dev = BPF_CORE_READ(skb, dev);
	if (!dev)
		return 0;
	netdev_id_of(dev, &id);
	if (!netdev_matches(&id, targ_dev, targ_netns))
		return 0;
	v = counts_of(HM_RX);
	if (!v)
		return 0;
	v->packets++;
	v->bytes += BPF_CORE_READ(skb, len);
	return 0;
}

/* `id` is the device's (raw_tp, tp_btf) or only its name (classic tracepoint). */
static __always_inline int on_xmit(struct netdev_id *id, int rc, __u32 len)
{
	struct hm_packets *v;

	if (!netdev_matches(id, targ_dev, id->netns ? targ_netns : 0))
		return 0;
	v = counts_of(HM_TX);
	if (!v)
		return 0;
	if (rc == 0) {
		v->packets++;
		v->bytes += len;
	} else {
		v->failed++;
	}
	return 0;
}

BTF_HANDLERS(hm_softirq_entry, softirq_entry, on_softirq_entry(vec), unsigned int vec)
BTF_HANDLERS(hm_softirq_exit, softirq_exit, on_softirq_exit(vec), unsigned int vec)
BTF_HANDLERS(hm_receive, netif_receive_skb, on_receive(skb), struct sk_buff *skb)

SEC("?tracepoint/irq/softirq_entry")
int hm_softirq_entry_tracepoint(struct trace_event_raw_softirq *args)
{
	return on_softirq_entry(args->vec);
}

SEC("?tracepoint/irq/softirq_exit")
int hm_softirq_exit_tracepoint(struct trace_event_raw_softirq *args)
{
	return on_softirq_exit(args->vec);
}

SEC("?tracepoint/net/netif_receive_skb")
int hm_receive_tracepoint(struct trace_event_raw_net_dev_template *args)
{
	return on_receive((struct sk_buff *)args->skbaddr);
}

NETDEV_XMIT_HANDLERS(hm_xmit, on_xmit)

char LICENSE[] SEC("license") = "GPL";
