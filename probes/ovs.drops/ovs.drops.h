/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between ovs.bpf.c and probes/ovs.drops/kernel.ts (which decodes these layouts). */
#ifndef EBPFNET_OVS_H
#define EBPFNET_OVS_H

#define OVS_MAX_ENTRIES 4096
/* skbs that entered the kernel datapath and were not freed yet (LRU: forgets the oldest). */
#define OVS_INFLIGHT_ENTRIES 65536
/* An skb freed this long after it entered OVS is not attributed to OVS (its pointer was reused). */
#define OVS_INFLIGHT_MAX_NS 1000000000ULL

/* What a `counts` entry counts. */
enum ovs_hook {
	OVS_HOOK_VPORT_RECEIVE = 0, /* ovs_vport_receive: a packet entered the datapath on ifindex */
	OVS_HOOK_PROCESS = 1,       /* ovs_dp_process_packet: a flow-table lookup */
	OVS_HOOK_UPCALL = 2,        /* ovs_dp_upcall: a miss (or userspace action) sent to ovs-vswitchd */
	OVS_HOOK_UPCALL_ERROR = 3,  /* ovs_dp_upcall returned -err: the packet is lost (err set) */
	OVS_HOOK_DROP_REASON = 4,   /* kfree_skb with a reason of the OPENVSWITCH subsystem (6.4+) */
	OVS_HOOK_DROP_AFTER_RX = 5, /* kfree_skb (any other drop reason) of an skb that entered OVS */
	OVS_HOOK_SLOTS = 6,
};

/* Key of the `counts` hash map (24 bytes, no holes). Value: __u64 count. */
struct ovs_key {
	__u64 location; /* kernel address that freed the skb (drop hooks), else 0 */
	__u32 hook;     /* enum ovs_hook */
	__u32 ifindex;  /* the device the packet entered OVS from, else skb->dev's, else 0 */
	__u32 reason;   /* enum skb_drop_reason (drop hooks), else 0 */
	__s32 err;      /* OVS_HOOK_UPCALL_ERROR: the positive errno, else 0 */
};

/* Value of the `inflight` map, keyed by skb address. */
struct ovs_inflight {
	__u64 ts_ns;
	__u32 ifindex;
	__u32 pad;
};

#endif
