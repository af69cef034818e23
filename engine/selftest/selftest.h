/* Event shared by selftest.bpf.c and its loader (engine/native tests). */
#ifndef EBPFNET_SELFTEST_H
#define EBPFNET_SELFTEST_H

#define SELFTEST_COMM_LEN 16
#define SELFTEST_MAX_STACK_DEPTH 32
/* 6.1's verifier walks every turn of the burst loop and gives up at 8192 pending jumps
 * (4096 turns: "The sequence of 8193 jumps is too complex"). */
#define SELFTEST_MAX_BURST 2048

/* Which handler counted or emitted (the key of the `counts` map). */
enum selftest_source {
	SELFTEST_TRACEPOINT = 1,
	SELFTEST_TP_BTF = 2,
	SELFTEST_RAW_TP = 3,
	SELFTEST_UPROBE = 4,
	SELFTEST_URETPROBE = 5,
	SELFTEST_KPROBE = 6,
	SELFTEST_FENTRY = 7,
};

/* 48 bytes, no implicit padding: the TypeScript side reads it by offset. */
struct selftest_event {
	__u64 ts_ns;     /* 0: bpf_ktime_get_ns() */
	__u32 tgid;      /* 8 */
	__u32 tid;       /* 12 */
	__u32 seq;       /* 16: index within the burst */
	__s32 kstack_id; /* 20: id in the `stacks` map, < 0 when unavailable */
	__u32 source;    /* 24: enum selftest_source */
	__u32 pad;       /* 28 */
	char comm[SELFTEST_COMM_LEN]; /* 32 */
};

#endif
