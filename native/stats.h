// Run-time statistics of BPF programs (kernel.bpf_stats_enabled without touching the sysctl).
#pragma once
#include <napi.h>

namespace ebpfnet {

/**
 * enableStats() → fd. While the fd is open the kernel counts run_cnt/run_time_ns for every
 * BPF program (BPF_ENABLE_STATS); closing it, or the process dying, turns counting back off
 * unless someone else still holds it on: nothing to restore by hand.
 */
Napi::Value EnableStats(const Napi::CallbackInfo& info);

}  // namespace ebpfnet
