// SPDX-License-Identifier: GPL-2.0
/* Exercises the native runtime: counts getppid() calls of one thread through every attach
 * kind that can work (tracepoint, tp_btf, raw_tp, uprobe/uretprobe) and streams the
 * tracepoint's events through a ring buffer. The kprobe/fentry twins start with autoload
 * off ("?" section prefix) so the object loads on kernels without them. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "count.h"
#include "selftest.h"

#define NR_GETPPID 110 /* x86-64 */

/* Filters, set before load. 0 = any. */
const volatile __u32 targ_tgid = 0;
const volatile __u32 targ_tid = 0;
/* Ring buffer events emitted per traced call (a throughput knob), 0 = none. */
const volatile __u32 burst = 1;

/* enum selftest_source → calls seen. */
HASH_MAP(counts, 16, __u32, __u64);

RINGBUF_MAP(events, 256 * 1024);

/* Events that did not fit in the ring buffer. */
PERCPU_ARRAY_MAP(lost, 1, __u64);

STACK_MAP(stacks, 1024, SELFTEST_MAX_STACK_DEPTH);

static __always_inline bool wanted(void)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (targ_tgid && (__u32)(id >> 32) != targ_tgid)
		return false;
	if (targ_tid && (__u32)id != targ_tid)
		return false;
	return true;
}

static __always_inline void count(__u32 source)
{
	count_key(&counts, &source);
}

/* A program `name` (declared by `kind`: BPF_KPROBE, BPF_KRETPROBE, BPF_PROG) that only counts
 * the tested thread's calls as `source`. */
#define COUNTING_PROG(sec, kind, name, source)	\
	SEC(sec)					\
	int kind(name)					\
	{						\
		if (wanted())				\
			count(source);			\
		return 0;				\
	}

static __always_inline void emit(void *ctx, __u32 source)
{
	__s32 kstack = bpf_get_stackid(ctx, &stacks, 0);
	__u64 ts = bpf_ktime_get_ns(), id = bpf_get_current_pid_tgid();

	for (__u32 i = 0; i < burst && i < SELFTEST_MAX_BURST; i++) {
		struct selftest_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

		if (!e) {
			bump_slot(&lost, 0);
			continue;
		}
		e->ts_ns = ts;
		e->tgid = id >> 32;
		e->tid = (__u32)id;
		e->seq = i;
		e->kstack_id = kstack;
		e->source = source;
		e->pad = 0;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		bpf_ringbuf_submit(e, 0);
	}
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int st_tracepoint(struct trace_event_raw_sys_enter *ctx)
{
	if (!wanted())
		return 0;
	count(SELFTEST_TRACEPOINT);
	emit(ctx, SELFTEST_TRACEPOINT);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(st_tp_btf, struct pt_regs *regs, long id)
{
	if (id != NR_GETPPID || !wanted())
		return 0;
	count(SELFTEST_TP_BTF);
	return 0;
}

SEC("raw_tp/sys_enter")
int st_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] != NR_GETPPID || !wanted())
		return 0;
	count(SELFTEST_RAW_TP);
	return 0;
}

/* Attached by the loader to a function it names (libc getuid in the tests). libbpf 1.1 has
 * no BPF_UPROBE macro: uprobes share the kprobe context. */
COUNTING_PROG("uprobe", BPF_KPROBE, st_uprobe, SELFTEST_UPROBE)
COUNTING_PROG("uretprobe", BPF_KRETPROBE, st_uretprobe, SELFTEST_URETPROBE)

/* Twins of one trivial handler: a loader keeps the one the kernel can attach. */
COUNTING_PROG("?kprobe/vfs_read", BPF_KPROBE, st_kprobe, SELFTEST_KPROBE)
COUNTING_PROG("?fentry/vfs_read", BPF_PROG, st_fentry, SELFTEST_FENTRY)

char LICENSE[] SEC("license") = "GPL";
