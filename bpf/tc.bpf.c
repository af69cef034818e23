// SPDX-License-Identifier: GPL-2.0
/* other.tc: qdisc configuration changes (qdisc:qdisc_create, qdisc_destroy, qdisc_reset), each
 * kept as one event (time, device, kind, handle, parent) in an array the probe reads after the
 * window: changes are rare, so every one is kept, in order, and the ones past the array's end
 * are counted as lost.
 *
 * Two attach flavours of the three handlers, chosen at load by the probe: tp_btf (typed
 * arguments: the device's index and namespace too) and the classic tracepoints ("?": autoload
 * off; the device by name only). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "tc.h"

/* Filters, set before load: a device name (empty: any) and a namespace inode (0: any). */
const volatile char targ_dev[NETDEV_NAME_LEN] = {};
const volatile __u32 targ_netns = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TC_MAX_EVENTS);
	__type(key, __u32);
	__type(value, struct tc_event);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TC_COUNT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

/* The next free slot of `events`, or NULL when it is full (the event is counted all the same). */
static __always_inline struct tc_event *claim(const struct netdev_id *dev)
{
	__u32 zero = TC_COUNT_SEEN, slot;
	__u64 *seen;

	if (!netdev_matches(dev, targ_dev, dev->netns ? targ_netns : 0))
		return NULL;
	seen = bpf_map_lookup_elem(&counts, &zero);
	if (!seen)
		return NULL;
	slot = (__u32)__sync_fetch_and_add(seen, 1);
	if (slot >= TC_MAX_EVENTS)
		return NULL;
	return bpf_map_lookup_elem(&events, &slot);
}

static __always_inline void fill(struct tc_event *e, __u32 type, __u32 parent, __u32 handle, const struct netdev_id *dev)
{
	e->ts_ns = bpf_ktime_get_ns();
	e->type = type;
	e->parent = parent;
	e->handle = handle;
	e->pad = 0;
	__builtin_memcpy(&e->dev, dev, sizeof(*dev));
}

/* destroy and reset: the qdisc itself says who it is. */
static __always_inline int on_qdisc(struct Qdisc *q, __u32 type)
{
	struct netdev_id dev = {};
	struct net_device *nd;
	struct tc_event *e;

	if (!q)
		return 0;
	nd = BPF_CORE_READ(q, dev_queue, dev);
	if (!nd)
		return 0;
	netdev_id_of(nd, &dev);
	e = claim(&dev);
	if (!e)
		return 0;
	fill(e, type, BPF_CORE_READ(q, parent), BPF_CORE_READ(q, handle), &dev);
	BPF_CORE_READ_STR_INTO(&e->kind, q, ops, id);
	return 0;
}

SEC("tp_btf/qdisc_create")
int BPF_PROG(tc_create_tp_btf, const struct Qdisc_ops *ops, struct net_device *nd, u32 parent)
{
	struct netdev_id dev = {};
	struct tc_event *e;

	if (!nd || !ops)
		return 0;
	netdev_id_of(nd, &dev);
	e = claim(&dev);
	if (!e)
		return 0;
	fill(e, TC_EV_CREATE, parent, 0, &dev);
	BPF_CORE_READ_STR_INTO(&e->kind, ops, id);
	return 0;
}

SEC("tp_btf/qdisc_destroy")
int BPF_PROG(tc_destroy_tp_btf, struct Qdisc *q)
{
	return on_qdisc(q, TC_EV_DESTROY);
}

SEC("tp_btf/qdisc_reset")
int BPF_PROG(tc_reset_tp_btf, struct Qdisc *q)
{
	return on_qdisc(q, TC_EV_RESET);
}

/* Classic tracepoints: the device and kind as strings of the event. */
static __always_inline int on_event(void *args, __u32 type, __u32 loc_dev, __u32 loc_kind, __u32 parent, __u32 handle)
{
	struct netdev_id dev = {};
	struct tc_event *e;

	data_loc_str(args, loc_dev, dev.name, sizeof(dev.name));
	e = claim(&dev);
	if (!e)
		return 0;
	fill(e, type, parent, handle, &dev);
	data_loc_str(args, loc_kind, e->kind, sizeof(e->kind));
	return 0;
}

SEC("?tracepoint/qdisc/qdisc_create")
int tc_create_tracepoint(struct trace_event_raw_qdisc_create *args)
{
	return on_event(args, TC_EV_CREATE, args->__data_loc_dev, args->__data_loc_kind, args->parent, 0);
}

SEC("?tracepoint/qdisc/qdisc_destroy")
int tc_destroy_tracepoint(struct trace_event_raw_qdisc_destroy *args)
{
	return on_event(args, TC_EV_DESTROY, args->__data_loc_dev, args->__data_loc_kind, args->parent, args->handle);
}

SEC("?tracepoint/qdisc/qdisc_reset")
int tc_reset_tracepoint(struct trace_event_raw_qdisc_reset *args)
{
	return on_event(args, TC_EV_RESET, args->__data_loc_dev, args->__data_loc_kind, args->parent, args->handle);
}

char LICENSE[] SEC("license") = "GPL";
