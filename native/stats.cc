#include "stats.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace ebpfnet {

Napi::Value EnableStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) {
    int err = errno;
    Napi::Error e = Napi::Error::New(env, std::string("BPF_ENABLE_STATS failed: ") + strerror(err));
    e.Set("errno", Napi::Number::New(env, err));
    throw e;
  }
  return Napi::Number::New(env, fd);
}

}  // namespace ebpfnet
