// Every live BPF handle (ring reader, link, object) of each JavaScript environment, so that
// closeAll() can release them on exit, signals and uncaught errors even when the JavaScript
// side lost track of them.
#pragma once
#include <napi.h>

#include <cstddef>

namespace ebpfnet {

/** Closed in this order by closeAll(): readers first (they read maps), objects last. */
enum class HandleKind { Reader = 0, Link = 1, Object = 2 };

class Handle {
 public:
  Handle(napi_env env, HandleKind kind, const void* owner = nullptr);
  virtual ~Handle();
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  /** Releases the kernel resources; false when already closed. Must be idempotent. */
  virtual bool Close() = 0;
  virtual bool IsOpen() const = 0;

  napi_env env() const { return env_; }
  HandleKind kind() const { return kind_; }
  /** The object a reader reads or a link attached a program of (closed with it), or null. */
  const void* owner() const { return owner_; }

 private:
  napi_env env_;
  HandleKind kind_;
  const void* owner_;
};

struct CloseCounts {
  size_t readers = 0;
  size_t links = 0;
  size_t objects = 0;
};

/** Closes the environment's handles of the given kinds (all when linksOnly is false). */
CloseCounts CloseAllHandles(napi_env env, bool linksOnly);

/** Marks the environment as shutting down: JavaScript can no longer be called for it. */
void MarkTeardown(napi_env env);
bool TearingDown(napi_env env);

/** Closes every handle whose owner is `owner` (readers first, then links). */
void CloseHandlesOwnedBy(const void* owner);

/** How many handles of the environment are still open, per kind. */
CloseCounts CountOpenHandles(napi_env env);

}  // namespace ebpfnet
