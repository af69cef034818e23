// Errors thrown to JavaScript: errno-based, with the libbpf output that explains them.
#pragma once
#include <napi.h>
#include <string>

namespace ebpfnet {

/** `ENOENT` for 2; `E<n>` when the C library has no name for it. */
std::string ErrnoName(int err);

/**
 * An Error whose message reads "<what>: <strerror> (<CODE>)", with `code` (the errno name),
 * `errno` (the positive number) and, when libbpf printed anything, `log`.
 */
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& what, const std::string& log = "");

/** A plain Error with a `code` ('EINVAL', 'ECLOSED'...). */
Napi::Error CodeError(Napi::Env env, const char* code, const std::string& message);

}  // namespace ebpfnet
