/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between tc.bpf.c and probes/other.tc/probe.ts (which decodes these layouts). */
#ifndef EBPFNET_TC_H
#define EBPFNET_TC_H

#include "netdev.h"

#define TC_KIND_LEN 16
/* Events kept per session; the ones that find the map full are counted as lost. */
#define TC_MAX_EVENTS 4096

enum tc_event_type {
	TC_EV_CREATE = 0,   /* qdisc:qdisc_create: tc created a qdisc (add, replace with a new kind) */
	TC_EV_DESTROY = 1,  /* qdisc:qdisc_destroy: a qdisc was freed (deleted, replaced, device gone) */
	TC_EV_RESET = 2,    /* qdisc:qdisc_reset: a qdisc's queue was flushed (device down, graft) */
};

/* Slots of the per-CPU `totals` array. */
enum tc_total {
	TC_TOTAL_SEEN = 0,  /* events that passed the filters */
	TC_TOTAL_LOST = 1,  /* of which not kept: `events` was full */
	TC_TOTAL_SLOTS = 2,
};

/* Key of the `events` hash map: when and where the event happened, unique per event; the probe
 * orders the events by time (16 bytes). */
struct tc_event_key {
	__u64 ts_ns;        /* bpf_ktime_get_ns() */
	__u32 cpu;
	__u32 seq;          /* this CPU's count of events before this one: unique even within a ns */
};

/* Value of `events` (56 bytes, no holes). With the classic tracepoints the device is known by
 * name only (ifindex, netns 0). */
struct tc_event {
	__u32 type;         /* enum tc_event_type */
	__u32 parent;
	__u32 handle;       /* 0 at create: the tracepoint does not carry it */
	__u32 pad;
	struct netdev_id dev;
	char kind[TC_KIND_LEN];
};

/* ---- tc-kprobe.bpf.c: the classifier and action calls (kprobes tcf_classify, tcf_action_exec) */

#define TC_KP_MAX_ENTRIES 4096

enum tc_kp_call {
	TC_KP_CLASSIFY = 0,  /* tcf_classify: a packet looked up in a hook's (or a class's) filter chain */
	TC_KP_ACTIONS = 1,   /* tcf_action_exec: a matching filter's actions ran */
};

/* Slots of its per-CPU `totals` array. */
enum tc_kp_total {
	TC_KP_SEEN = 0,      /* calls that passed the filters */
	TC_KP_UNKEYED = 1,   /* of which not counted by key: `calls` was full */
	TC_KP_SLOTS = 2,
};

/* Key of `calls` (48 bytes, no holes). Value: __u64 count. */
struct tc_kp_key {
	struct netdev_id dev;
	__u32 call;          /* enum tc_kp_call */
	__u32 ingress;       /* skb->tc_at_ingress: 1 at the ingress hook, 0 at egress */
	char kind[TC_KIND_LEN]; /* tcf_action_exec: the first action's kind (`mirred`); tcf_classify: the first filter's (`u32`) */
};

#endif
