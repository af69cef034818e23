// An attached program: detach() or garbage collection destroys the bpf_link.
#pragma once
#include <bpf/libbpf.h>
#include <napi.h>

#include <string>

#include "registry.h"

namespace ebpfnet {

class LinkWrap : public Napi::ObjectWrap<LinkWrap>, public Handle {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit LinkWrap(const Napi::CallbackInfo& info);
  ~LinkWrap() override;
  bool Close() override;
  bool IsOpen() const override { return link_ != nullptr; }

 private:
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value GetDetached(const Napi::CallbackInfo& info);
  Napi::Value GetInfo(const Napi::CallbackInfo& info);

  bpf_link* link_ = nullptr;
  std::string program_, kind_, target_;
};

/** Wraps a link libbpf just created (the wrapper owns it; closing `owner` detaches it). */
Napi::Object NewLink(Napi::Env env, bpf_link* link, const void* owner, const std::string& program,
                     const std::string& kind, const std::string& target);

}  // namespace ebpfnet
