/* SPDX-License-Identifier: GPL-2.0 */
/* Reading a kernel object's field the cheapest way the program type allows. In tp_btf (and
 * fentry) programs the arguments carry BTF types, so a field is a plain load the verifier guards
 * (~1 ns); raw_tp, kprobe and classic tracepoint programs need a probe read (~8 ns, a helper
 * call each). Pass `direct` as a literal (hooks.h hands handlers one): the other form is
 * compiled out, so the verifier never sees a plain load through an untyped pointer. Include
 * after bpf_core_read.h. */
#ifndef EBPFNET_FIELD_H
#define EBPFNET_FIELD_H

/* FIELD(direct, skb->dev->ifindex, skb, dev, ifindex): the typed expression and BPF_CORE_READ's
 * arguments for the same field. */
#define FIELD(direct, typed, ...) ((direct) ? (typed) : BPF_CORE_READ(__VA_ARGS__))
#define BITFIELD(direct, s, field) ((direct) ? BPF_CORE_READ_BITFIELD(s, field) : BPF_CORE_READ_BITFIELD_PROBED(s, field))

#endif
