// A BPF object file opened with libbpf: globals and autoload set before load, then load,
// attach, maps, close.
#pragma once
#include <bpf/libbpf.h>
#include <napi.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "registry.h"

namespace ebpfnet {

/** BTF type ids of a map's key and value (0: none). */
struct MapBtfIds {
  uint32_t key = 0;
  uint32_t value = 0;
};

/** The libbpf object, shared by the object's wrapper and the maps handed out from it. */
class ObjectState : public Handle {
 public:
  ObjectState(napi_env env, bpf_object* obj, std::string path);
  ~ObjectState() override;
  bool Close() override;
  bool IsOpen() const override { return obj_ != nullptr; }

  bpf_object* obj() const { return obj_; }
  bool loaded() const { return loaded_; }
  void set_loaded() { loaded_ = true; }
  const std::string& path() const { return path_; }
  /** The key and value types the map was declared with, as read at open. */
  MapBtfIds btfIds(const bpf_map* map) const;

 private:
  bpf_object* obj_;
  // libbpf clears a map's type ids when the kernel refuses them at load: kept from open.
  std::unordered_map<const bpf_map*, MapBtfIds> btfIds_;
  bool loaded_ = false;
  std::string path_;
};

/** new NativeObject(path, { objectName?, btfCustomPath?, kconfig?, captureLevel? }) */
class BpfObjectWrap : public Napi::ObjectWrap<BpfObjectWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit BpfObjectWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value Maps(const Napi::CallbackInfo& info);
  Napi::Value Globals(const Napi::CallbackInfo& info);
  Napi::Value SetGlobal(const Napi::CallbackInfo& info);
  Napi::Value SetAutoload(const Napi::CallbackInfo& info);
  Napi::Value SetAttachTarget(const Napi::CallbackInfo& info);
  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Attach(const Napi::CallbackInfo& info);
  Napi::Value Map(const Napi::CallbackInfo& info);
  Napi::Value BtfType(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetLoaded(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  Napi::Value GetName(const Napi::CallbackInfo& info);

  bpf_object* Open(Napi::Env env, const char* what) const;
  bpf_program* Program(Napi::Env env, const Napi::Value& name) const;
  bpf_map* FindMap(Napi::Env env, const Napi::Value& name) const;
  /** The program or map (`kind`) `name` that `find` finds, or a thrown error. */
  template <typename T>
  T* Named(Napi::Env env, const Napi::Value& name, const std::string& kind,
           T* (*find)(const bpf_object*, const char*)) const;

  std::shared_ptr<ObjectState> state_;
  int captureLevel_ = 1;
};

}  // namespace ebpfnet
