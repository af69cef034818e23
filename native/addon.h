// Per-environment data of the addon: the constructors of wrappers created from C++.
#pragma once
#include <napi.h>

namespace ebpfnet {

struct AddonData {
  Napi::FunctionReference link;
  Napi::FunctionReference map;
};

AddonData& Constructors(Napi::Env env);

}  // namespace ebpfnet
