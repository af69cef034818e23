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
#include "field.h"
#include "perf.host-metrics.h"
#include "log2.h"

/* Filters of the packet counts, set before load: a device name (empty: any), a namespace inode
 * (0: any), directions (bit HM_RX, bit HM_TX). Softirq time is never filtered. */
const volatile char targ_dev[NETDEV_NAME_LEN] = {};
const volatile __u32 targ_netns = 0;
const volatile __u8 targ_dirs = 3;

PERCPU_ARRAY_MAP(softirqs, HM_VECTORS, struct hm_softirq);

PERCPU_ARRAY_MAP(packets, HM_DIRS, struct hm_packets);

TOTALS_MAP(HM_T_SLOTS);

static __always_inline int on_softirq_entry(__u32 vec)
{
	struct hm_softirq *v = bpf_map_lookup_elem(&softirqs, &vec);

	if (v)
		v->started_ns = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int on_softirq_exit(__u32 vec)
{
	struct hm_softirq *v = bpf_map_lookup_elem(&softirqs, &vec);
	__u64 ns;

	if (!v)
		return 0;
	if (!v->started_ns) {
		bump_slot(&totals, HM_T_EXIT_UNPAIRED);
		return 0;
	}
	ns = bpf_ktime_get_ns() - v->started_ns;
	v->started_ns = 0;
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

/* Whether a device filter is set: without one no device is read at all. */
static __always_inline bool dev_filtered(void)
{
	return targ_dev[0] || targ_netns;
}

/* Whether `dev` passes the device filters (its name and namespace read only when they are set). */
static __always_inline bool dev_wanted(struct net_device *dev, bool direct)
{
	struct netdev_id id = {};

	if (!dev)
		return false;
	if (!dev_filtered())
		return true;
	id.netns = FIELD(direct, dev->nd_net.net->ns.inum, dev, nd_net.net, ns.inum);
	BPF_CORE_READ_STR_INTO(&id.name, dev, name);
	return netdev_matches(&id, targ_dev, targ_netns);
}

static __always_inline int on_receive(struct sk_buff *skb, bool direct)
{
	struct hm_packets *v;

	if (!skb || !dev_wanted(FIELD(direct, skb->dev, skb, dev), direct))
		return 0;
	v = counts_of(HM_RX);
	if (!v)
		return 0;
	v->packets++;
	v->bytes += FIELD(direct, skb->len, skb, len);
	return 0;
}

static __always_inline int on_xmit(int rc, __u32 len)
{
	struct hm_packets *v = counts_of(HM_TX);

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
BTF_HANDLERS(hm_receive, netif_receive_skb, on_receive(skb, direct), struct sk_buff *skb)
BTF_HANDLERS(hm_xmit, net_dev_xmit, dev_wanted(dev, direct) ? on_xmit(rc, skb_len) : 0,
	     struct sk_buff *skb, int rc, struct net_device *dev, unsigned int skb_len)

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
	return on_receive((struct sk_buff *)args->skbaddr, false);
}

/* The classic tracepoint has the device's name only: its namespace filter does not apply. */
SEC("?tracepoint/net/net_dev_xmit")
int hm_xmit_tracepoint(struct trace_event_raw_net_dev_xmit *args)
{
	struct netdev_id id = {};

	if (targ_dev[0]) {
		data_loc_str(args, args->__data_loc_name, id.name, sizeof(id.name));
		if (!netdev_matches(&id, targ_dev, 0))
			return 0;
	}
	return on_xmit(args->rc, args->len);
}

char LICENSE[] SEC("license") = "GPL";
