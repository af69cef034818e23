// SPDX-License-Identifier: GPL-2.0
/* other.dev-queue: what is handed to each device's transmit path (net:net_dev_queue, fired by
 * __dev_queue_xmit for every packet, with or without a qdisc) and what its driver answered
 * (net:net_dev_xmit, the return code of ndo_start_xmit), aggregated in the kernel per device:
 * packets, bytes, a log2 size histogram, the L3/L4 split, GSO packets and GSO anomalies, and
 * driver results (NETDEV_TX_OK, NETDEV_TX_BUSY, NET_XMIT_DROP/CN, errors).
 *
 * Three attach flavours of the two handlers, chosen at load by the probe (probes/lib/netdev.ts):
 * raw_tp (with a cached minimal BTF it loads in a few ms), tp_btf (typed arguments) and the
 * classic tracepoints; tp_btf loads by default, the others only when asked ("?"). At
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

#define NETDEV_TX_BUSY_ 0x10
#define NET_XMIT_DROP_ 0x01
#define NET_XMIT_CN_ 0x02

/* Filters, set before load: a device name (empty: any) and a namespace inode (0: any). */
const volatile char targ_dev[NETDEV_NAME_LEN] = {};
const volatile __u32 targ_netns = 0;

HASH_MAP(devices, DEVQ_MAX_ENTRIES, struct netdev_id, struct devq_value);

TOTALS_MAP(DEVQ_TOTAL_SLOTS);

static __always_inline struct devq_value *value_of(struct netdev_id *id)
{
	static const struct devq_value zero;

	return lookup_or_init(&devices, id, &zero, &totals, DEVQ_TOTAL_UNKEYED);
}

static __always_inline int on_queue(struct sk_buff *skb)
{
	struct netdev_id id = {};
	struct devq_value *v;
	enum netdev_l3 l3;
	enum netdev_l4 l4;
	bool gso, anomaly;
	__u32 len;

	if (!skb_netdev(skb, &id, targ_dev, targ_netns))
		return 0;
	bump_slot(&totals, DEVQ_TOTAL_QUEUED);
	v = value_of(&id);
	if (!v)
		return 0;
	/* Each value is counted as soon as it is known: the verifier then explores the branches
	 * of the size slot, the classes and GSO one after another rather than every combination
	 * of them (~50 ms of load time otherwise). */
	len = BPF_CORE_READ(skb, len);
	__sync_fetch_and_add(&v->slots[log2_slot(len, DEVQ_SLOTS)], 1);
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, len);
	skb_classes(skb, &l3, &l4);
	slot_add_shared(v->l3, l3, NETDEV_L3_SLOTS);
	slot_add_shared(v->l4, l4, NETDEV_L4_SLOTS);
	skb_gso(skb, &gso, &anomaly);
	if (gso)
		__sync_fetch_and_add(&v->gso_packets, 1);
	if (anomaly)
		__sync_fetch_and_add(&v->gso_anomalies, 1);
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
	struct devq_value *v;
	__u32 slot = rc_slot(rc);

	if (!netdev_matches(id, targ_dev, id->netns ? targ_netns : 0))
		return 0;
	bump_slot(&totals, DEVQ_TOTAL_XMIT);
	v = value_of(id);
	if (!v)
		return 0;
	slot_add_shared(v->xmit, slot, DEVQ_RC_SLOTS);
	if (slot == DEVQ_RC_OK)
		__sync_fetch_and_add(&v->xmit_bytes, len);
	return 0;
}

BTF_HANDLERS(dev_queue, net_dev_queue, on_queue(skb), struct sk_buff *skb)
NETDEV_XMIT_HANDLERS(dev_xmit, on_xmit)

SEC("?tracepoint/net/net_dev_queue")
int dev_queue_tracepoint(struct trace_event_raw_net_dev_template *args)
{
	return on_queue((struct sk_buff *)args->skbaddr);
}

char LICENSE[] SEC("license") = "GPL";
