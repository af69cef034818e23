// Entry point of the ebpfnet native addon: libbpf behind node-addon-api.
#include "addon.h"

#include <bpf/libbpf.h>

#include "errors.h"
#include "features.h"
#include "link.h"
#include "log.h"
#include "map.h"
#include "object.h"
#include "registry.h"
#include "ringbuf.h"
#include "stats.h"

namespace ebpfnet {

AddonData& Constructors(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

namespace {

Napi::Object Counts(Napi::Env env, const CloseCounts& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("readers", Napi::Number::New(env, static_cast<double>(c.readers)));
  o.Set("links", Napi::Number::New(env, static_cast<double>(c.links)));
  o.Set("objects", Napi::Number::New(env, static_cast<double>(c.objects)));
  return o;
}

/** closeAll(): stops every ring reader, detaches every link, closes every object. */
Napi::Value CloseAll(const Napi::CallbackInfo& info) {
  return Counts(info.Env(), CloseAllHandles(info.Env(), false));
}

/** detachAll(): detaches every link; objects (and their maps) stay readable. */
Napi::Value DetachAll(const Napi::CallbackInfo& info) {
  return Counts(info.Env(), CloseAllHandles(info.Env(), true));
}

/** liveHandles(): how many readers, links and objects are still open. */
Napi::Value LiveHandles(const Napi::CallbackInfo& info) { return Counts(info.Env(), CountOpenHandles(info.Env())); }

Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), libbpf_version_string());
}

Napi::Value PossibleCpus(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), libbpf_num_possible_cpus());
}

void Cleanup(void* arg) {
  auto env = static_cast<napi_env>(arg);
  MarkTeardown(env);
  ReleaseLogCallback(env);
  CloseAllHandles(env, false);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfPrint();
  // libbpf 1.x mode: errors are returned as -errno and set errno, NULL pointers on failure.
  libbpf_set_strict_mode(LIBBPF_STRICT_ALL);

  auto* data = new AddonData();
  data->link = Napi::Persistent(LinkWrap::Define(env));
  data->map = Napi::Persistent(MapWrap::Define(env));
  env.SetInstanceData<AddonData>(data);
  napi_add_env_cleanup_hook(env, Cleanup, env);

  exports.Set("NativeObject", BpfObjectWrap::Define(env));
  exports.Set("NativeLink", data->link.Value());
  exports.Set("NativeMap", data->map.Value());
  exports.Set("NativeRingReader", RingReader::Define(env));
  exports.Set("closeAll", Napi::Function::New<CloseAll>(env, "closeAll"));
  exports.Set("detachAll", Napi::Function::New<DetachAll>(env, "detachAll"));
  exports.Set("liveHandles", Napi::Function::New<LiveHandles>(env, "liveHandles"));
  exports.Set("enableStats", Napi::Function::New<EnableStats>(env, "enableStats"));
  exports.Set("features", Napi::Function::New<Features>(env, "features"));
  exports.Set("setLogCallback", Napi::Function::New<SetLogCallback>(env, "setLogCallback"));
  exports.Set("libbpfVersion", Napi::Function::New<LibbpfVersion>(env, "libbpfVersion"));
  exports.Set("possibleCpus", Napi::Function::New<PossibleCpus>(env, "possibleCpus"));
  return exports;
}

}  // namespace

}  // namespace ebpfnet

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return ebpfnet::Init(env, exports); }

NODE_API_MODULE(ebpfnet, InitAddon)
