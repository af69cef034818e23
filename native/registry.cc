#include "registry.h"

#include <algorithm>
#include <mutex>
#include <vector>

namespace ebpfnet {

namespace {

std::mutex g_mu;
std::vector<Handle*> g_handles;
std::vector<napi_env> g_teardown;

bool Registered(Handle* h) {
  std::lock_guard<std::mutex> lock(g_mu);
  return std::find(g_handles.begin(), g_handles.end(), h) != g_handles.end();
}

// Close outside the lock: closing an object closes its readers, which looks the list up again.
template <typename Pick>
std::vector<Handle*> Snapshot(Pick pick) {
  std::lock_guard<std::mutex> lock(g_mu);
  std::vector<Handle*> out;
  for (Handle* h : g_handles)
    if (pick(h)) out.push_back(h);
  std::stable_sort(out.begin(), out.end(), [](Handle* a, Handle* b) { return a->kind() < b->kind(); });
  return out;
}

void Count(CloseCounts& c, HandleKind kind) {
  switch (kind) {
    case HandleKind::Reader: c.readers++; break;
    case HandleKind::Link: c.links++; break;
    case HandleKind::Object: c.objects++; break;
  }
}

}  // namespace

Handle::Handle(napi_env env, HandleKind kind, const void* owner) : env_(env), kind_(kind), owner_(owner) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_handles.push_back(this);
}

Handle::~Handle() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_handles.erase(std::remove(g_handles.begin(), g_handles.end(), this), g_handles.end());
}

void MarkTeardown(napi_env env) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_teardown.push_back(env);
}

bool TearingDown(napi_env env) {
  std::lock_guard<std::mutex> lock(g_mu);
  return std::find(g_teardown.begin(), g_teardown.end(), env) != g_teardown.end();
}

CloseCounts CloseAllHandles(napi_env env, bool linksOnly) {
  CloseCounts counts;
  auto list = Snapshot([&](Handle* h) { return h->env() == env && (!linksOnly || h->kind() == HandleKind::Link); });
  for (Handle* h : list)
    if (Registered(h) && h->Close()) Count(counts, h->kind());
  return counts;
}

void CloseHandlesOwnedBy(const void* owner) {
  auto list = Snapshot([&](Handle* h) { return owner != nullptr && h->owner() == owner; });
  for (Handle* h : list)
    if (Registered(h)) h->Close();
}

CloseCounts CountOpenHandles(napi_env env) {
  CloseCounts counts;
  for (Handle* h : Snapshot([&](Handle* x) { return x->env() == env; }))
    if (h->IsOpen()) Count(counts, h->kind());
  return counts;
}

}  // namespace ebpfnet
