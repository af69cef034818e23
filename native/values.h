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

/** A file descriptor, or null when libbpf has none yet (negative). */
inline Napi::Value FdOrNull(Napi::Env env, int fd) {
  return fd >= 0 ? Napi::Value(Napi::Number::New(env, fd)) : env.Null();
}

}  // namespace ebpfnet
