// SPDX-License-Identifier: GPL-2.0
/* other.tc's classifier and action calls, seen from the tc core itself (kprobes, so only where
 * the kernel has them; the seed hooked the same two functions):
 *  - kprobe tcf_classify: a packet looked up in a filter chain (a device's ingress or egress
 *    hook, or a classful qdisc's), counted by {device, direction, the chain's first filter kind}:
 *    the lookups of every filter of the hook, whatever the classifier keeps itself;
 *  - kprobe tcf_action_exec: a matching filter's actions ran, by {device, direction, first action
 *    kind}.
 * Device filters as the other queueing programs (bpf/include/netdev.h). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "other.tc.h"

/* Filters, set before load: a device name (empty: any) and a namespace inode (0: any). */
const volatile char targ_dev[NETDEV_NAME_LEN] = {};
const volatile __u32 targ_netns = 0;

COUNTS_MAP(calls, struct tc_kp_key, TC_KP_MAX_ENTRIES);
TOTALS_MAP(TC_KP_SLOTS);

/* Counts one call for the skb's device; `key.kind` set by the caller. */
static __always_inline int count_call(struct sk_buff *skb, struct tc_kp_key *key)
{
	if (!skb_netdev(skb, &key->dev, targ_dev, targ_netns))
		return 0;
	key->ingress = BPF_CORE_READ_BITFIELD_PROBED(skb, tc_at_ingress);
	bump_slot(&totals, TC_KP_SEEN);
	if (!count_key(&calls, key))
		bump_slot(&totals, TC_KP_UNKEYED);
	return 0;
}

/* int tcf_classify(struct sk_buff *skb, const struct tcf_block *block, const struct tcf_proto *tp, struct tcf_result *res, bool compat_mode) */
SEC("kprobe/tcf_classify")
int BPF_KPROBE(tc_classify_kprobe, struct sk_buff *skb, const struct tcf_block *block, const struct tcf_proto *tp)
{
	struct tc_kp_key key = { .call = TC_KP_CLASSIFY };

	if (tp)
		BPF_CORE_READ_STR_INTO(&key.kind, tp, ops, kind);
	return count_call(skb, &key);
}

/* int tcf_action_exec(struct sk_buff *skb, struct tc_action **actions, int nr_actions, struct tcf_result *res) */
SEC("kprobe/tcf_action_exec")
int BPF_KPROBE(tc_action_exec_kprobe, struct sk_buff *skb, struct tc_action **actions, int nr_actions)
{
	struct tc_kp_key key = { .call = TC_KP_ACTIONS };
	struct tc_action *first = NULL;

	if (!actions || nr_actions <= 0 || bpf_probe_read_kernel(&first, sizeof(first), actions) || !first)
		return 0;
	BPF_CORE_READ_STR_INTO(&key.kind, first, ops, kind);
	return count_call(skb, &key);
}

char LICENSE[] SEC("license") = "GPL";
