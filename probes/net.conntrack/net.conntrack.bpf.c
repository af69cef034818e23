// SPDX-License-Identifier: GPL-2.0
/* Connection-tracking verdicts, counted in the kernel by {hook, verdict, return, pf, hook
 * number, OVS or netfilter, ctinfo} (probes/net.conntrack/net.conntrack.h):
 *  - kprobe/kretprobe nf_conntrack_in: what conntrack decided for each packet: tracked (and
 *    as what: new, established, related, reply), invalid (accepted without an entry: `ct
 *    state invalid` / OVS `+inv`), dropped (no entry could be made), untracked;
 *  - kretprobe __nf_conntrack_confirm: entries that could not be inserted (NF_DROP: a clash
 *    that could not be resolved, or the entry died before confirmation);
 *  - kprobe/kretprobe ovs_ct_execute: the OVS kernel datapath's ct() action, its errors, and
 *    (by marking the thread while it runs) which nf_conntrack_in calls it made.
 * All hooks are kprobes: on kernels without kprobes the programs load but do not attach. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "maps.h"
#include "count.h"
#include "ipv4-filter.h"
#include "net.conntrack.h"

#define NF_DROP_ 0
#define NF_ACCEPT_ 1
/* include/net/netfilter/nf_conntrack.h: the low 3 bits of skb->_nfct are the ctinfo. */
#define NFCT_INFOMASK_ 7UL
#define IP_CT_UNTRACKED_ 7

/* Filters, set before load. 0 = any. Addresses in network byte order. */
const volatile __u32 targ_saddr = 0;
const volatile __u32 targ_daddr = 0;
const volatile __u8 targ_proto = 0;

HASH_MAP(counts, CT_MAX_ENTRIES, struct ct_key, __u64);

/* nf_conntrack_in entry → return, by thread. */
HASH_MAP(calls, 4096, __u32, struct ct_call);

/* Threads inside ovs_ct_execute (value unused). */
HASH_MAP(in_ovs, 4096, __u32, __u8);

/* Slot 0: events not counted because `counts` was full. */
TOTALS_MAP(1);

static __always_inline void count(struct ct_key *key)
{
	if (!count_key(&counts, key))
		bump_slot(&totals, 0);
}

static __always_inline __u32 tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

/* The IPv4 filters, from the network header (set on every path conntrack sees). */
static __always_inline bool wanted(struct sk_buff *skb)
{
	struct iphdr ip;

	if (!targ_saddr && !targ_daddr && !targ_proto)
		return true;
	return skb_ipv4_header(skb, &ip) && ipv4_tuple_matches(&ip, targ_saddr, targ_daddr, targ_proto);
}

SEC("kprobe/nf_conntrack_in")
int BPF_KPROBE(ct_in_kprobe, struct sk_buff *skb, const struct nf_hook_state *state)
{
	struct ct_call call = {};
	__u32 t = tid();

	if (!skb || !wanted(skb))
		return 0;
	call.skb = (__u64)skb;
	call.pf = BPF_CORE_READ(state, pf);
	call.hooknum = BPF_CORE_READ(state, hook);
	bpf_map_update_elem(&calls, &t, &call, BPF_ANY);
	return 0;
}

SEC("kretprobe/nf_conntrack_in")
int BPF_KRETPROBE(ct_in_kretprobe, unsigned int ret)
{
	struct ct_key key = {};
	struct ct_call *call;
	struct sk_buff *skb;
	__u32 t = tid();
	unsigned long nfct;

	call = bpf_map_lookup_elem(&calls, &t);
	if (!call)
		return 0; /* filtered out at entry, or entered before the probe attached */
	skb = (struct sk_buff *)call->skb;
	key.hook = CT_HOOK_IN;
	key.ret = (__s32)ret;
	key.pf = call->pf;
	key.hooknum = call->hooknum;
	key.ovs = bpf_map_lookup_elem(&in_ovs, &t) ? 1 : 0;
	bpf_map_delete_elem(&calls, &t);
	nfct = BPF_CORE_READ(skb, _nfct);
	if ((ret & 0xff) == NF_DROP_) {
		key.verdict = CT_DROP;
	} else if ((ret & 0xff) != NF_ACCEPT_) {
		key.verdict = CT_OTHER;
	} else if ((nfct & ~NFCT_INFOMASK_) != 0) {
		key.verdict = CT_TRACKED;
		key.ctinfo = nfct & NFCT_INFOMASK_;
	} else if ((nfct & NFCT_INFOMASK_) == IP_CT_UNTRACKED_) {
		key.verdict = CT_UNTRACKED;
	} else {
		key.verdict = CT_INVALID;
	}
	count(&key);
	return 0;
}

SEC("kretprobe/__nf_conntrack_confirm")
int BPF_KRETPROBE(ct_confirm_kretprobe, int ret)
{
	struct ct_key key = {};
	__u32 t = tid();

	if (ret == NF_ACCEPT_)
		return 0;
	key.hook = CT_HOOK_CONFIRM;
	key.ret = ret;
	key.ovs = bpf_map_lookup_elem(&in_ovs, &t) ? 1 : 0;
	count(&key);
	return 0;
}

SEC("kprobe/ovs_ct_execute")
int BPF_KPROBE(ovs_ct_kprobe, void *net, struct sk_buff *skb)
{
	__u32 t = tid();
	__u8 one = 1;

	if (!skb || !wanted(skb))
		return 0;
	bpf_map_update_elem(&in_ovs, &t, &one, BPF_ANY);
	return 0;
}

SEC("kretprobe/ovs_ct_execute")
int BPF_KRETPROBE(ovs_ct_kretprobe, int ret)
{
	struct ct_key key = {};
	__u32 t = tid();

	if (!bpf_map_lookup_elem(&in_ovs, &t))
		return 0;
	bpf_map_delete_elem(&in_ovs, &t);
	key.hook = CT_HOOK_OVS;
	key.ret = ret;
	key.ovs = 1;
	count(&key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
