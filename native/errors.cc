#include "errors.h"

#include <string.h>

namespace ebpfnet {

std::string ErrnoName(int err) {
  // glibc >= 2.32 names errno values; Debian 12 has 2.36.
  const char* name = strerrorname_np(err);
  return name ? name : "E" + std::to_string(err);
}

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& what, const std::string& log) {
  if (err < 0) err = -err;
  char buf[128];
  const char* text = strerror_r(err, buf, sizeof(buf));
  std::string code = ErrnoName(err);
  Napi::Error e = Napi::Error::New(env, what + ": " + text + " (" + code + ")");
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, err));
  if (!log.empty()) e.Set("log", Napi::String::New(env, log));
  return e;
}

Napi::Error CodeError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

}  // namespace ebpfnet
