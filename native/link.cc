#include "link.h"

#include "addon.h"

namespace ebpfnet {

namespace {
struct LinkInit {
  bpf_link* link;
  const void* owner;
  std::string program, kind, target;
};

const char* const kUsage = "NativeLink is created by NativeObject.attach()";
}  // namespace

Napi::Function LinkWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeLink",
                     {
                         InstanceMethod<&LinkWrap::Detach>("detach"),
                         InstanceAccessor<&LinkWrap::GetDetached>("detached"),
                         InstanceAccessor<&LinkWrap::GetInfo>("info"),
                     });
}

LinkWrap::LinkWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<LinkWrap>(info), Handle(info.Env(), HandleKind::Link, InitData<LinkInit>(info, kUsage)->owner) {
  auto* init = InitData<LinkInit>(info, kUsage);
  link_ = init->link;
  program_ = init->program;
  kind_ = init->kind;
  target_ = init->target;
}

LinkWrap::~LinkWrap() { Close(); }

bool LinkWrap::Close() {
  if (!link_) return false;
  bpf_link__destroy(link_);
  link_ = nullptr;
  return true;
}

Napi::Value LinkWrap::Detach(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), Close()); }

Napi::Value LinkWrap::GetDetached(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), link_ == nullptr);
}

Napi::Value LinkWrap::GetInfo(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("program", program_);
  o.Set("kind", kind_);
  o.Set("target", target_);
  return o;
}

Napi::Object NewLink(Napi::Env env, bpf_link* link, const void* owner, const std::string& program,
                     const std::string& kind, const std::string& target) {
  LinkInit init{link, owner, program, kind, target};
  try {
    return Constructors(env).link.New({Napi::External<LinkInit>::New(env, &init)});
  } catch (...) {
    bpf_link__destroy(link);  // never leave a link attached that nobody owns
    throw;
  }
}

}  // namespace ebpfnet
