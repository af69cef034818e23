#include "features.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "errors.h"
#include "values.h"

namespace ebpfnet {

namespace {

// r0 = 0; exit: the smallest program every type accepts.
const struct bpf_insn kReturnZero[] = {
    {0xb7 /* BPF_ALU64 | BPF_MOV | BPF_K */, 0, 0, 0, 0},
    {0x95 /* BPF_JMP | BPF_EXIT */, 0, 0, 0, 0},
};
constexpr size_t kReturnZeroLen = sizeof(kReturnZero) / sizeof(kReturnZero[0]);

const char* kKprobePmu = "/sys/bus/event_source/devices/kprobe/type";

Napi::Value Tristate(Napi::Env env, int probe, int* err) {
  *err = probe < 0 ? -probe : 0;
  if (probe < 0) return env.Null();
  return Napi::Boolean::New(env, probe == 1);
}

Napi::Object TypeProbe(Napi::Env env, int result) {
  Napi::Object o = Napi::Object::New(env);
  int err = 0;
  o.Set("supported", Tristate(env, result, &err));
  if (err) o.Set("errno", ErrnoName(err));
  return o;
}

struct Attempt {
  bool loads = false;
  bool attaches = false;
  int err = 0;  // errno of the step that failed
  std::string how;
};

Napi::Object ToObject(Napi::Env env, const Attempt& a) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loads", a.loads);
  o.Set("attaches", a.attaches);
  if (a.err) {
    o.Set("errno", a.err);
    o.Set("code", ErrnoName(a.err));
  }
  o.Set("how", a.how);
  return o;
}

std::string Describe(int err) { return ErrnoName(err); }

int ReadPmuType(const char* path) {
  FILE* f = fopen(path, "r");
  if (!f) return -errno;
  int type = -1;
  int n = fscanf(f, "%d", &type);
  fclose(f);
  return n == 1 ? type : -EINVAL;
}

// Loads a kprobe program and attaches it through the kprobe PMU as libbpf does (a perf event
// plus PERF_EVENT_IOC_SET_BPF); the event is never enabled, so it never fires.
Attempt TryKprobe(const std::string& func) {
  Attempt a;
  int prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "ebpfnet_fp_kp", "GPL", kReturnZero, kReturnZeroLen, nullptr);
  if (prog < 0) {
    a.err = errno;
    a.how = "loading a kprobe program failed: " + Describe(a.err);
    return a;
  }
  a.loads = true;
  int type = ReadPmuType(kKprobePmu);
  if (type < 0) {
    a.err = -type;
    a.how = std::string("the program loads, but there is no kprobe PMU (") + kKprobePmu + ": " + Describe(a.err) + ")";
    close(prog);
    return a;
  }
  struct perf_event_attr attr = {};
  attr.size = sizeof(attr);
  attr.type = static_cast<uint32_t>(type);
  attr.config1 = reinterpret_cast<uint64_t>(func.c_str());  // kprobe_func
  attr.config2 = 0;                                        // probe_offset
  int pfd = static_cast<int>(syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));
  if (pfd < 0) {
    a.err = errno;
    a.how = "perf_event_open(kprobe " + func + ") failed: " + Describe(a.err);
  } else if (ioctl(pfd, PERF_EVENT_IOC_SET_BPF, prog) < 0) {
    a.err = errno;
    a.how = "PERF_EVENT_IOC_SET_BPF on kprobe " + func + " failed: " + Describe(a.err);
  } else {
    a.attaches = true;
    a.how = "attached a kprobe program to " + func + " through the kprobe PMU";
  }
  if (pfd >= 0) close(pfd);
  close(prog);
  return a;
}

// Loads an fentry program on `func` (the kernel checks the BTF target at load) and attaches it.
Attempt TryFentry(const std::string& func) {
  Attempt a;
  int id = libbpf_find_vmlinux_btf_id(func.c_str(), BPF_TRACE_FENTRY);
  if (id < 0) {
    a.err = -id;
    a.how = "no BTF for function " + func + ": " + Describe(a.err);
    return a;
  }
  LIBBPF_OPTS(bpf_prog_load_opts, opts);
  opts.expected_attach_type = BPF_TRACE_FENTRY;
  opts.attach_btf_id = static_cast<uint32_t>(id);
  int prog = bpf_prog_load(BPF_PROG_TYPE_TRACING, "ebpfnet_fp_fe", "GPL", kReturnZero, kReturnZeroLen, &opts);
  if (prog < 0) {
    a.err = errno;
    a.how = "loading an fentry program on " + func + " was refused: " + Describe(a.err);
    return a;
  }
  a.loads = true;
  int link = bpf_raw_tracepoint_open(nullptr, prog);
  if (link < 0) {
    a.err = errno;
    a.how = "the fentry program on " + func + " loads but does not attach: " + Describe(a.err);
  } else {
    a.attaches = true;
    a.how = "attached an fentry program to " + func;
    close(link);
  }
  close(prog);
  return a;
}

}  // namespace

Napi::Value Features(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object opts = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  std::string kprobeFunc = OptionalString(opts, "kprobeFunc");
  std::string fentryFunc = OptionalString(opts, "fentryFunc");
  if (kprobeFunc.empty()) kprobeFunc = "vfs_read";
  if (fentryFunc.empty()) fentryFunc = "vfs_read";

  Napi::Object out = Napi::Object::New(env);
  Napi::Object btfInfo = Napi::Object::New(env);
  struct btf* vmlinux = btf__load_vmlinux_btf();
  int btfErr = vmlinux ? 0 : errno;
  btfInfo.Set("present", vmlinux != nullptr);
  if (btfErr) btfInfo.Set("errno", ErrnoName(btfErr));
  if (vmlinux) btf__free(vmlinux);
  out.Set("btf", btfInfo);

  Napi::Object progs = Napi::Object::New(env);
  progs.Set("kprobe", TypeProbe(env, libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_KPROBE, nullptr)));
  progs.Set("tracepoint", TypeProbe(env, libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACEPOINT, nullptr)));
  progs.Set("raw_tracepoint", TypeProbe(env, libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_RAW_TRACEPOINT, nullptr)));
  progs.Set("tracing", TypeProbe(env, libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACING, nullptr)));
  progs.Set("perf_event", TypeProbe(env, libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_PERF_EVENT, nullptr)));
  out.Set("progTypes", progs);

  Napi::Object maps = Napi::Object::New(env);
  maps.Set("ringbuf", TypeProbe(env, libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr)));
  maps.Set("stack_trace", TypeProbe(env, libbpf_probe_bpf_map_type(BPF_MAP_TYPE_STACK_TRACE, nullptr)));
  maps.Set("percpu_array", TypeProbe(env, libbpf_probe_bpf_map_type(BPF_MAP_TYPE_PERCPU_ARRAY, nullptr)));
  out.Set("mapTypes", maps);

  out.Set("kprobe", ToObject(env, TryKprobe(kprobeFunc)));
  out.Set("fentry", ToObject(env, TryFentry(fentryFunc)));
  return out;
}

}  // namespace ebpfnet
