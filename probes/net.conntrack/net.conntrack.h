/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between conntrack.bpf.c and probes/lib/conntrack-kprobes.ts (which decodes these layouts). */
#ifndef EBPFNET_CONNTRACK_H
#define EBPFNET_CONNTRACK_H

#define CT_MAX_ENTRIES 4096

/* Which return a `counts` entry counts. */
enum ct_hook {
	CT_HOOK_IN = 0,      /* nf_conntrack_in returned (verdict set) */
	CT_HOOK_CONFIRM = 1, /* __nf_conntrack_confirm returned NF_DROP: the entry was not inserted */
	CT_HOOK_OVS = 2,     /* ovs_ct_execute returned (ret: 0 or -errno) */
};

/* What nf_conntrack_in decided for the packet. */
enum ct_verdict {
	CT_TRACKED = 0,   /* accepted with a conntrack entry attached (ctinfo says which) */
	CT_INVALID = 1,   /* accepted without an entry: the packet is ct state invalid */
	CT_DROP = 2,      /* NF_DROP: no entry could be made (table full), or a helper dropped it */
	CT_UNTRACKED = 3, /* accepted, marked untracked (a notrack rule) */
	CT_OTHER = 4,     /* NF_QUEUE, NF_STOLEN, NF_REPEAT */
};

/* Key of the `counts` hash map (16 bytes, no holes). Value: __u64 count. */
struct ct_key {
	__u32 hook;    /* enum ct_hook */
	__u32 verdict; /* enum ct_verdict (CT_HOOK_IN), else 0 */
	__s32 ret;     /* the function's return value */
	__u8 pf;       /* NFPROTO_* of the hook (CT_HOOK_IN), else 0 */
	__u8 hooknum;  /* NF_INET_* hook (CT_HOOK_IN), else 0 */
	__u8 ovs;      /* 1: called from ovs_ct_execute (the OVS kernel datapath) */
	__u8 ctinfo;   /* enum ip_conntrack_info of a tracked packet, else 0 */
};

/* What the entry probe of nf_conntrack_in keeps for its return probe, by thread. */
struct ct_call {
	__u64 skb;
	__u8 pf;
	__u8 hooknum;
	__u8 pad[6];
};

#endif
