// Kernel feature probes: program and map types libbpf can load, and real attach attempts.
#pragma once
#include <napi.h>

namespace ebpfnet {

/** features({ kprobeFunc?, fentryFunc? }) → { btf, progTypes, mapTypes, kprobe, fentry } */
Napi::Value Features(const Napi::CallbackInfo& info);

}  // namespace ebpfnet
