// SPDX-License-Identifier: GPL-2.0
/* other.dev-queue: what is handed to each device's transmit path (net:net_dev_queue, fired by
 * __dev_queue_xmit for every packet, with or without a qdisc) and what its driver answered
 * (net:net_dev_xmit, the return code of ndo_start_xmit), aggregated in the kernel per device:
 * packets, bytes, a log2 size histogram, the L3/L4 split, GSO packets and GSO anomalies, and
 * driver results (NETDEV_TX_OK, NETDEV_TX_BUSY, NET_XMIT_DROP/CN, errors).
 *
 * Three attach flavours of the two handlers, chosen at load by the probe (probes/lib/netdev.ts):
 * raw_tp (with a cached minimal BTF it loads in a few ms), tp_btf (typed arguments) and the
 * classic tracepoints; tp_btf loads by default (plain loads), the others only when asked ("?"). An
 * event costs one cache line of this CPU's (`queue_pending`, `xmit_pending`: bpf/include/pending.h)
 * while its device and class stay the same; a way's counts go to `devices` otherwise. At
 * net_dev_xmit the skb may be freed already: only the device (raw_tp, tp_btf) or its name
 * (classic) is read there. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "other.dev-queue.h"
#include "log2.h"
#include "field.h"

#define NETDEV_TX_BUSY_ 0x10
#define NET_XMIT_DROP_ 0x01
#define NET_XMIT_CN_ 0x02

/* Filters, set before load: a device name (empty: any) and a namespace inode (0: any). */
const volatile char targ_dev[NETDEV_NAME_LEN] = {};
const volatile __u32 targ_netns = 0;

HASH_MAP(devices, DEVQ_MAX_ENTRIES, struct netdev_id, struct devq_value);

TOTALS_MAP(DEVQ_TOTAL_SLOTS);

PENDING_MAP(queue_pending, struct devq_pending);
PENDING_MAP(xmit_pending, struct devq_pending);

/* The entry of `id` for `n` events moving there from a way, counted in `total`. */
static __always_inline struct devq_value *value_for(const struct netdev_id *id, __u64 n, __u32 total)
{
	static const struct devq_value zero;

	return way_entry(&devices, id, &zero, &totals, total, DEVQ_TOTAL_UNKEYED, n);
}

/* Moves a `queue_pending` way's packets into its device's entry. */
static __always_inline void flush_queued(const struct devq_pending *w)
{
	struct devq_value *v = value_for(&w->dev, w->packets, DEVQ_TOTAL_QUEUED);
	__u64 n = w->packets;

	if (!v)
		return;
	if (w->slot < DEVQ_SLOTS)
		__sync_fetch_and_add(&v->slots[w->slot], n);
	__sync_fetch_and_add(&v->packets, n);
	__sync_fetch_and_add(&v->bytes, w->bytes);
	if (w->l3 < NETDEV_L3_SLOTS)
		__sync_fetch_and_add(&v->l3[w->l3], n);
	if (w->l4 < NETDEV_L4_SLOTS)
		__sync_fetch_and_add(&v->l4[w->l4], n);
	if (w->gso & DEVQ_GSO)
		__sync_fetch_and_add(&v->gso_packets, n);
	if (w->gso & DEVQ_GSO_ANOMALY)
		__sync_fetch_and_add(&v->gso_anomalies, n);
}

/* Moves an `xmit_pending` way's driver results into its device's entry. */
static __always_inline void flush_xmits(const struct devq_pending *w)
{
	struct devq_value *v = value_for(&w->dev, w->packets, DEVQ_TOTAL_XMIT);

	if (!v)
		return;
	if (w->slot < DEVQ_RC_SLOTS)
		__sync_fetch_and_add(&v->xmit[w->slot], w->packets);
	__sync_fetch_and_add(&v->xmit_bytes, w->bytes);
}

static __always_inline void flush_way(const struct devq_pending *w, bool queued)
{
	if (queued)
		flush_queued(w);
	else
		flush_xmits(w);
}

/* Counts an event of `ev`'s device and class (of `len` bytes) in this CPU's way of the device
 * in `ways`, moving the way's counts on first when it held another. */
static __always_inline void count_pending(void *ways, struct devq_pending *ev, __u32 len, bool queued)
{
	struct devq_pending *w = pending_way(ways, ev->dev.ifindex);

	if (!w) {
		ev->packets = 1;
		ev->bytes = len;
		flush_way(ev, queued);
		return;
	}
	if (!w->packets || !same_words(w, ev, offsetof(struct devq_pending, packets))) {
		if (w->packets)
			flush_way(w, queued);
		__builtin_memcpy(w, ev, offsetof(struct devq_pending, packets));
		w->packets = 0;
		w->bytes = 0;
	}
	w->packets++;
	w->bytes += len;
}

static __always_inline int on_queue(struct sk_buff *skb, bool direct)
{
	struct devq_pending ev = {};
	struct net_device *dev;
	enum netdev_l3 l3;
	enum netdev_l4 l4;
	bool gso, anomaly;
	__u32 len;

	if (!skb)
		return 0;
	dev = FIELD(direct, skb->dev, skb, dev);
	if (!dev)
		return 0;
	netdev_id_read(dev, &ev.dev, direct);
	if (!netdev_matches(&ev.dev, targ_dev, targ_netns))
		return 0;
	len = FIELD(direct, skb->len, skb, len);
	skb_classes(skb, &l3, &l4, direct);
	skb_gso(skb, &gso, &anomaly, direct);
	ev.slot = log2_slot(len, DEVQ_SLOTS);
	ev.l3 = l3;
	ev.l4 = l4;
	ev.gso = (gso ? DEVQ_GSO : 0) | (anomaly ? DEVQ_GSO_ANOMALY : 0);
	count_pending(&queue_pending, &ev, len, true);
	return 0;
}

static __always_inline __u32 rc_slot(int rc)
{
	if (rc == 0)
		return DEVQ_RC_OK;
	if (rc == NETDEV_TX_BUSY_)
		return DEVQ_RC_BUSY;
	if (rc == NET_XMIT_DROP_)
		return DEVQ_RC_DROP;
	if (rc == NET_XMIT_CN_)
		return DEVQ_RC_CN;
	return rc < 0 ? DEVQ_RC_ERROR : DEVQ_RC_OTHER;
}

/* `id` is the device's (tp_btf) or only its name (classic tracepoint). */
static __always_inline int on_xmit(struct netdev_id *id, int rc, __u32 len)
{
	struct devq_pending ev = { .dev = *id, .slot = rc_slot(rc) };

	if (!netdev_matches(id, targ_dev, id->netns ? targ_netns : 0))
		return 0;
	count_pending(&xmit_pending, &ev, ev.slot == DEVQ_RC_OK ? len : 0, false);
	return 0;
}

BTF_HANDLERS(dev_queue, net_dev_queue, on_queue(skb, direct), struct sk_buff *skb)
NETDEV_XMIT_HANDLERS(dev_xmit, on_xmit)

SEC("?tracepoint/net/net_dev_queue")
int dev_queue_tracepoint(struct trace_event_raw_net_dev_template *args)
{
	return on_queue((struct sk_buff *)args->skbaddr, false);
}

char LICENSE[] SEC("license") = "GPL";
