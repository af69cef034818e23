// Reading option objects and byte arguments passed from JavaScript.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace ebpfnet {

std::string OptionalString(const Napi::Object& o, const char* key);
std::string RequiredString(const Napi::Object& o, const char* key);
bool OptionalBool(const Napi::Object& o, const char* key);
double OptionalNumber(const Napi::Object& o, const char* key, double fallback);

/** A view of a Uint8Array/Buffer argument (valid while the argument is alive). */
struct Bytes {
  const uint8_t* data;
  size_t size;
};
Bytes GetBytes(Napi::Env env, const Napi::Value& v, const char* what);

}  // namespace ebpfnet
