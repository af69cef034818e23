// A map of a loaded object: lookup, update, delete, key iteration, batch reads and the BTF
// layout of its key and value.
#pragma once
#include <bpf/libbpf.h>
#include <napi.h>

#include <memory>

#include "object.h"

namespace ebpfnet {

class MapWrap : public Napi::ObjectWrap<MapWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit MapWrap(const Napi::CallbackInfo& info);

  /** The map, or a thrown error when its object is closed or not loaded yet. */
  bpf_map* Live(Napi::Env env, const char* what) const;
  const std::shared_ptr<ObjectState>& state() const { return state_; }

 private:
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value NextKey(const Napi::CallbackInfo& info);
  Napi::Value ReadAll(const Napi::CallbackInfo& info);
  Napi::Value GetInfo(const Napi::CallbackInfo& info);
  Napi::Value Layout(const Napi::CallbackInfo& info);

  /** Bytes one lookup returns: value size, or per CPU rounded to 8 for per-CPU maps. */
  size_t ValueBytes() const;

  std::shared_ptr<ObjectState> state_;
  bpf_map* map_ = nullptr;
};

Napi::Object NewMap(Napi::Env env, const std::shared_ptr<ObjectState>& state, bpf_map* map);

/** { name, type, keySize, valueSize, maxEntries, perCpu, internal, fd } */
Napi::Object DescribeMap(Napi::Env env, const bpf_map* map);

}  // namespace ebpfnet
