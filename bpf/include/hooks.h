/* SPDX-License-Identifier: GPL-2.0 */
/* The attach flavours of one handler. A probe's attach plan (probes/lib) picks which programs to
 * load by name at run time, so each flavour is its own program with a fixed name. Include after
 * bpf_tracing.h. */
#ifndef EBPFNET_HOOKS_H
#define EBPFNET_HOOKS_H

/* A tracepoint under its two BTF flavours, both handed its arguments `args`: tp_btf (program
 * `btf_name`, loaded by default) and raw_tp (`raw_name`, "?": loaded when the probe asks, with a
 * minimal BTF). `call` may use `direct`, true in tp_btf only: pass it to FIELD() (field.h), which
 * reads with a plain load there and BPF_CORE_READ in raw_tp, which requires probe reads. */
#define BTF_RAW_PROGS(btf_name, raw_name, tp, call, args...)		\
	SEC("tp_btf/" #tp)						\
	int BPF_PROG(btf_name, args)					\
	{								\
		const bool direct = true;				\
		(void)direct;						\
		return call;						\
	}								\
	SEC("?raw_tp/" #tp)						\
	int BPF_PROG(raw_name, args)					\
	{								\
		const bool direct = false;				\
		(void)direct;						\
		return call;						\
	}

/* BTF_RAW_PROGS named `<prefix>_tp_btf` and `<prefix>_raw_tp`. */
#define BTF_HANDLERS(prefix, tp, call, args...) \
	BTF_RAW_PROGS(prefix##_tp_btf, prefix##_raw_tp, tp, call, args)

/* A classic tracepoint `category/tp` of an skb ("?": loaded when asked): `call` sees the record
 * as `args` and its skb address as `skb`. */
#define SKB_TRACEPOINT(name, category, tp, record, call)		\
	SEC("?tracepoint/" #category "/" #tp)				\
	int name(struct record *args)					\
	{								\
		struct sk_buff *skb = (struct sk_buff *)args->skbaddr;	\
									\
		return call;						\
	}

#endif
