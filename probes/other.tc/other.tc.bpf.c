// SPDX-License-Identifier: GPL-2.0
/* other.tc: qdisc configuration changes (qdisc:qdisc_create, qdisc_destroy, qdisc_reset), each
 * kept as one event (device, kind, handle, parent) in a hash map keyed by time and CPU that the
 * probe reads and orders after the window: changes are rare, so every one is kept, and the ones
 * that find the map full are counted as lost.
 *
 * Three attach flavours of the three handlers, chosen at load by the probe (probes/lib/netdev.ts):
 * raw_tp (with a cached minimal BTF it loads in a few ms) and tp_btf, both with the kernel's
 * arguments (the device's index and namespace too), and the classic tracepoints (the device by
 * name only). tp_btf loads by default, the others only when asked ("?"). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "other.tc.h"

/* Filters, set before load: a device name (empty: any) and a namespace inode (0: any). */
const volatile char targ_dev[NETDEV_NAME_LEN] = {};
const volatile __u32 targ_netns = 0;

HASH_MAP(events, TC_MAX_EVENTS, struct tc_event_key, struct tc_event);

TOTALS_MAP(TC_TOTAL_SLOTS);

/* Keeps one event (device and kind filled in by the caller's `e`); counts it lost when the map is full. */
static __always_inline void keep(struct tc_event *e)
{
	__u32 slot = TC_TOTAL_SEEN;
	struct tc_event_key key = { .ts_ns = bpf_ktime_get_ns(), .cpu = bpf_get_smp_processor_id() };
	__u64 *seen = bpf_map_lookup_elem(&totals, &slot);

	if (!netdev_matches(&e->dev, targ_dev, e->dev.netns ? targ_netns : 0))
		return;
	if (!seen)
		return;
	key.seq = (__u32)*seen;
	*seen += 1; /* per-CPU slot: no atomics needed */
	if (bpf_map_update_elem(&events, &key, e, BPF_NOEXIST))
		bump_slot(&totals, TC_TOTAL_LOST);
}

/* destroy and reset: the qdisc itself says who it is. */
static __always_inline int on_qdisc(struct Qdisc *q, __u32 type)
{
	struct tc_event e = { .type = type };

	if (!qdisc_netdev(q, &e.dev))
		return 0;
	e.parent = BPF_CORE_READ(q, parent);
	e.handle = BPF_CORE_READ(q, handle);
	BPF_CORE_READ_STR_INTO(&e.kind, q, ops, id);
	keep(&e);
	return 0;
}

/* create: the qdisc does not exist yet, its ops and device do. */
static __always_inline int on_create(const struct Qdisc_ops *ops, struct net_device *nd, __u32 parent)
{
	struct tc_event e = { .type = TC_EV_CREATE, .parent = parent };

	if (!nd || !ops)
		return 0;
	netdev_id_of(nd, &e.dev);
	BPF_CORE_READ_STR_INTO(&e.kind, ops, id);
	keep(&e);
	return 0;
}

BTF_HANDLERS(tc_create, qdisc_create, on_create(ops, nd, parent), const struct Qdisc_ops *ops, struct net_device *nd, u32 parent)
BTF_HANDLERS(tc_destroy, qdisc_destroy, on_qdisc(q, TC_EV_DESTROY), struct Qdisc *q)
BTF_HANDLERS(tc_reset, qdisc_reset, on_qdisc(q, TC_EV_RESET), struct Qdisc *q)

/* Classic tracepoints: the device and kind as strings of the event. */
static __always_inline int on_event(void *args, __u32 type, __u32 loc_dev, __u32 loc_kind, __u32 parent, __u32 handle)
{
	struct tc_event e = { .type = type, .parent = parent, .handle = handle };

	data_loc_str(args, loc_dev, e.dev.name, sizeof(e.dev.name));
	data_loc_str(args, loc_kind, e.kind, sizeof(e.kind));
	keep(&e);
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
