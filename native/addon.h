// Per-environment data of the addon: the constructors of wrappers created from C++.
#pragma once
#include <napi.h>

namespace ebpfnet {

struct AddonData {
  Napi::FunctionReference link;
  Napi::FunctionReference map;
};

AddonData& Constructors(Napi::Env env);

/**
 * What C++ handed the constructor of a wrapper it creates (NewLink, NewMap) as an External;
 * a TypeError saying `usage` when JavaScript called the constructor itself.
 */
template <typename T>
T* InitData(const Napi::CallbackInfo& info, const char* usage) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), usage);
  return info[0].As<Napi::External<T>>().Data();
}

}  // namespace ebpfnet
