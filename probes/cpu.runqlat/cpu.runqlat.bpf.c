// SPDX-License-Identifier: GPL-2.0
/* cpu.runqlat: run-queue latency of a set of threads, i.e. how long each waited for a CPU
 * between becoming runnable (woken: sched_wakeup, sched_wakeup_new; or switched out while
 * still runnable: sched_switch with prev runnable) and being switched in (sched_switch next).
 * Aggregated in the kernel per thread: a log2 histogram in µs, count, total, max, waits over a
 * threshold, voluntary and involuntary context switches.
 *
 * Three attach flavours of the same three handlers, one flavour chosen at load by the probe
 * (all three programs of a flavour attach together):
 *  - raw_tp: no BTF lookup at attach; with a cached minimal BTF for the CO-RE reads it loads
 *    in a few ms;
 *  - tp_btf: the typed BTF tracepoints when no minimal BTF is at hand;
 *  - the classic tracepoints: where BTF tracepoints are refused. They carry pids, not task
 *    pointers: the process filter then relies on the `targets` map (filled from /proc before
 *    attach, and learning threads of the process as they are switched out).
 * tp_btf programs load by default, the others only when asked ("?" prefix). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "count.h"
#include "hooks.h"
#include "cpu.runqlat.h"
#include "log2.h"

#define TASK_RUNNING_ 0
/* Classic sched_switch `prev_state`: bits 0-7 are the sleeping states (S D T t X Z P I), bit 8
 * (TASK_REPORT_MAX) marks a preempted task; no sleeping bit means it stays runnable. */
#define TP_SLEEP_STATES 0xff

/* Filters and settings, set before load. */
const volatile __u8 filter_mode = RUNQLAT_ALL;
const volatile __u32 targ_tgid = 0;
/* RUNQLAT_TGID: also the threads of `targets` outside the process (its vhost workers where
 * they are kernel threads, before 6.4). */
const volatile __u8 targ_extra = 0;
/* Waits of at least this many ns are counted in `over_threshold` (0: not counted). */
const volatile __u64 threshold_ns = 0;

/* Threads to measure (RUNQLAT_TIDS, RUNQLAT_TGID): tid → 1, written by the probe before attach. */
HASH_MAP(targets, 4096, __u32, __u8);

/* When each runnable target thread started waiting: tid → ns. */
HASH_MAP(start, 10240, __u32, __u64);

/* Per-thread aggregates: tid → struct runqlat_thread. */
HASH_MAP(threads, 4096, __u32, struct runqlat_thread);

TOTALS_MAP(RUNQLAT_TOTAL_SLOTS);

/* task_struct before 5.14, where the state was `long state` (now `unsigned int __state`). */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

static __always_inline __u32 slot_of(__u64 delta_ns)
{
	return log2_slot(delta_ns / 1000, RUNQLAT_SLOTS);
}

static __always_inline bool in_targets(__u32 tid)
{
	return bpf_map_lookup_elem(&targets, &tid) != NULL;
}

/* Whether task `t` is measured, with its thread id in *tid; task pointer available (raw_tp,
 * tp_btf). In the process mode a task of another process costs one read. */
static __always_inline bool task_is_target(struct task_struct *t, __u32 *tid)
{
	if (filter_mode == RUNQLAT_TGID && (__u32)BPF_CORE_READ(t, tgid) == targ_tgid) {
		*tid = BPF_CORE_READ(t, pid);
		return true;
	}
	if (filter_mode == RUNQLAT_TGID && !targ_extra)
		return false;
	*tid = BPF_CORE_READ(t, pid);
	if (*tid == 0)
		return false; /* the idle tasks */
	return filter_mode == RUNQLAT_ALL || in_targets(*tid);
}

/* The same with a thread id only (classic tracepoints). */
static __always_inline bool tid_is_target(__u32 tid)
{
	if (tid == 0)
		return false;
	if (filter_mode == RUNQLAT_ALL)
		return true;
	return in_targets(tid);
}

/* The same for the current task (prev at sched_switch), learning threads of the process the
 * `targets` map does not know yet, so that their later wakeups are timed too. */
static __always_inline bool current_is_target(__u32 tid)
{
	__u8 one = 1;

	if (filter_mode != RUNQLAT_TGID)
		return tid_is_target(tid);
	if (tid == 0)
		return false;
	if ((__u32)(bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return targ_extra && in_targets(tid);
	if (!in_targets(tid))
		bpf_map_update_elem(&targets, &tid, &one, BPF_NOEXIST);
	return true;
}

static __always_inline void enqueued(__u32 tid)
{
	__u64 now = bpf_ktime_get_ns();

	if (bpf_map_update_elem(&start, &tid, &now, BPF_ANY))
		bump_slot(&totals, RUNQLAT_TOTAL_NO_START);
}

/* The aggregate of thread `tid`, created with its name (from `task`, else `comm`) when new. */
static __always_inline struct runqlat_thread *thread_of(__u32 tid, struct task_struct *task, const char *comm)
{
	struct runqlat_thread *v, init = {};

	v = bpf_map_lookup_elem(&threads, &tid);
	if (v)
		return v;
	if (task)
		BPF_CORE_READ_STR_INTO(&init.comm, task, comm);
	else if (comm) /* a classic tracepoint's field: ctx memory, read as kernel memory */
		bpf_probe_read_kernel(init.comm, sizeof(init.comm), comm);
	return insert_entry(&threads, &tid, &init, &totals, RUNQLAT_TOTAL_NO_THREAD);
}

/* prev (a target) is switched out: runnable again (re-enqueued) or going to sleep. */
static __always_inline void switched_out(__u32 tid, bool runnable, struct task_struct *task, const char *comm)
{
	struct runqlat_thread *v;

	if (runnable)
		enqueued(tid);
	v = thread_of(tid, task, comm);
	if (!v)
		return;
	if (runnable)
		__sync_fetch_and_add(&v->involuntary, 1);
	else
		__sync_fetch_and_add(&v->voluntary, 1);
}

/* next is switched in: its wait ends, if it was timed. */
static __always_inline void switched_in(__u32 tid, struct task_struct *task, const char *comm)
{
	struct runqlat_thread *v;
	__u64 *ts, delta;

	ts = bpf_map_lookup_elem(&start, &tid);
	if (!ts)
		return;
	delta = bpf_ktime_get_ns() - *ts;
	bpf_map_delete_elem(&start, &tid);
	if ((__s64)delta < 0)
		return;
	v = thread_of(tid, task, comm);
	if (!v)
		return;
	__sync_fetch_and_add(&v->slots[slot_of(delta)], 1);
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->total_ns, delta);
	if (threshold_ns && delta >= threshold_ns)
		__sync_fetch_and_add(&v->over_threshold, 1);
	if (delta > v->max_ns)
		v->max_ns = delta; /* racy only between CPUs switching the same thread: harmless */
	bump_slot(&totals, RUNQLAT_TOTAL_TIMED);
}

/* Handlers with task pointers (raw_tp, tp_btf). */

/* Whether the task is on a CPU: woken there (it had not gone to sleep yet), it does not wait.
 * Timing such a wake-up would leave a start time nothing ends, read as a wait at the window's end. */
static __always_inline bool task_on_cpu(struct task_struct *t)
{
	if (bpf_core_field_exists(t->on_cpu))
		return BPF_CORE_READ(t, on_cpu);
	return false;
}

static __always_inline int on_wakeup(struct task_struct *p)
{
	__u32 tid;

	if (task_is_target(p, &tid) && !task_on_cpu(p))
		enqueued(tid);
	return 0;
}

static __always_inline int on_switch(bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 tid;

	/* Preempted tasks stay on the run queue whatever their state says. The state is read from
	 * the task: the tracepoint's prev_state argument exists only since 5.18. A task that blocked
	 * and was woken again before this read looks runnable; its wait then counts from here
	 * (a little shorter than from its wakeup). */
	if (task_is_target(prev, &tid))
		switched_out(tid, preempt || task_state(prev) == TASK_RUNNING_, prev, NULL);
	/* Only targets have a start time. In the process mode the tgid read spares most lookups;
	 * otherwise the start lookup is the check. */
	if (filter_mode == RUNQLAT_TGID) {
		if (task_is_target(next, &tid))
			switched_in(tid, next, NULL);
		return 0;
	}
	tid = BPF_CORE_READ(next, pid);
	if (tid)
		switched_in(tid, next, NULL);
	return 0;
}

BTF_HANDLERS(runqlat_wakeup, sched_wakeup, on_wakeup(p), struct task_struct *p)
BTF_HANDLERS(runqlat_wakeup_new, sched_wakeup_new, on_wakeup(p), struct task_struct *p)
/* The 4th argument (prev_state, 5.18+) is not read: kernels before it have three. */
BTF_HANDLERS(runqlat_switch, sched_switch, on_switch(preempt, prev, next),
	     bool preempt, struct task_struct *prev, struct task_struct *next)

/* Classic tracepoints: pids and names, no task pointers. */

static __always_inline int on_wakeup_tp(struct trace_event_raw_sched_wakeup_template *args)
{
	__u32 tid = args->pid;

	if (tid_is_target(tid))
		enqueued(tid);
	return 0;
}

SEC("?tracepoint/sched/sched_wakeup")
int runqlat_wakeup_tracepoint(struct trace_event_raw_sched_wakeup_template *args)
{
	return on_wakeup_tp(args);
}

SEC("?tracepoint/sched/sched_wakeup_new")
int runqlat_wakeup_new_tracepoint(struct trace_event_raw_sched_wakeup_template *args)
{
	return on_wakeup_tp(args);
}

SEC("?tracepoint/sched/sched_switch")
int runqlat_switch_tracepoint(struct trace_event_raw_sched_switch *args)
{
	__u32 prev_tid = args->prev_pid;
	__u32 next_tid = args->next_pid;

	/* current is still prev here. */
	if (current_is_target(prev_tid))
		switched_out(prev_tid, (args->prev_state & TP_SLEEP_STATES) == 0, NULL, args->prev_comm);
	if (next_tid)
		switched_in(next_tid, NULL, args->next_comm);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
