#include "object.h"

#include <errno.h>

#include "btf-layout.h"
#include "datasec.h"
#include "errors.h"
#include "link.h"
#include "log.h"
#include "map.h"
#include "values.h"

namespace ebpfnet {

ObjectState::ObjectState(napi_env env, bpf_object* obj, std::string path)
    : Handle(env, HandleKind::Object), obj_(obj), path_(std::move(path)) {
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, obj) btfIds_[map] = {bpf_map__btf_key_type_id(map), bpf_map__btf_value_type_id(map)};
}

MapBtfIds ObjectState::btfIds(const bpf_map* map) const {
  auto it = btfIds_.find(map);
  return it == btfIds_.end() ? MapBtfIds{} : it->second;
}

ObjectState::~ObjectState() { Close(); }

bool ObjectState::Close() {
  if (!obj_) return false;
  CloseHandlesOwnedBy(this);  // its ring readers (they mmap its maps) and its links
  bpf_object__close(obj_);
  obj_ = nullptr;
  return true;
}

Napi::Function BpfObjectWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeObject",
                     {
                         InstanceMethod<&BpfObjectWrap::Programs>("programs"),
                         InstanceMethod<&BpfObjectWrap::Maps>("maps"),
                         InstanceMethod<&BpfObjectWrap::Globals>("globals"),
                         InstanceMethod<&BpfObjectWrap::SetGlobal>("setGlobal"),
                         InstanceMethod<&BpfObjectWrap::SetAutoload>("setAutoload"),
                         InstanceMethod<&BpfObjectWrap::SetAttachTarget>("setAttachTarget"),
                         InstanceMethod<&BpfObjectWrap::SetMaxEntries>("setMaxEntries"),
                         InstanceMethod<&BpfObjectWrap::Load>("load"),
                         InstanceMethod<&BpfObjectWrap::Attach>("attach"),
                         InstanceMethod<&BpfObjectWrap::Map>("map"),
                         InstanceMethod<&BpfObjectWrap::BtfType>("btfType"),
                         InstanceMethod<&BpfObjectWrap::Close>("close"),
                         InstanceAccessor<&BpfObjectWrap::GetLoaded>("loaded"),
                         InstanceAccessor<&BpfObjectWrap::GetClosed>("closed"),
                         InstanceAccessor<&BpfObjectWrap::GetName>("name"),
                     });
}

BpfObjectWrap::BpfObjectWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObjectWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "NativeObject: expected a path");
  std::string path = info[0].As<Napi::String>();
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  std::string objectName = OptionalString(opts, "objectName");
  std::string btfPath = OptionalString(opts, "btfCustomPath");
  std::string kconfig = OptionalString(opts, "kconfig");
  if (opts.Has("captureLevel") && opts.Get("captureLevel").IsNumber())
    captureLevel_ = opts.Get("captureLevel").As<Napi::Number>().Int32Value();

  LIBBPF_OPTS(bpf_object_open_opts, o);
  if (!objectName.empty()) o.object_name = objectName.c_str();
  if (!btfPath.empty()) o.btf_custom_path = btfPath.c_str();
  if (!kconfig.empty()) o.kconfig = kconfig.c_str();

  LogCapture capture(captureLevel_);
  bpf_object* obj = bpf_object__open_file(path.c_str(), &o);
  if (!obj) throw ErrnoError(env, errno, "open " + path, capture.Text());
  state_ = std::make_shared<ObjectState>(env, obj, path);
}

bpf_object* BpfObjectWrap::Open(Napi::Env env, const char* what) const {
  if (!state_ || !state_->obj()) throw CodeError(env, "ECLOSED", std::string(what) + ": object is closed");
  return state_->obj();
}

template <typename T>
T* BpfObjectWrap::Named(Napi::Env env, const Napi::Value& name, const std::string& kind,
                        T* (*find)(const bpf_object*, const char*)) const {
  if (!name.IsString()) throw Napi::TypeError::New(env, "expected a " + kind + " name");
  std::string n = name.As<Napi::String>();
  T* found = find(Open(env, kind.c_str()), n.c_str());
  if (!found) throw CodeError(env, "ENOENT", "no " + kind + " named " + n + " in " + state_->path());
  return found;
}

bpf_program* BpfObjectWrap::Program(Napi::Env env, const Napi::Value& name) const {
  return Named(env, name, "program", bpf_object__find_program_by_name);
}

bpf_map* BpfObjectWrap::FindMap(Napi::Env env, const Napi::Value& name) const {
  return Named(env, name, "map", bpf_object__find_map_by_name);
}

namespace {

/** { name, section, type, attachType, autoload, fd } */
Napi::Object DescribeProgram(Napi::Env env, const bpf_program* prog) {
  Napi::Object p = Napi::Object::New(env);
  const char* type = libbpf_bpf_prog_type_str(bpf_program__type(prog));
  // The expected attach type only means something for BTF-based (tracing, lsm) programs.
  enum bpf_prog_type t = bpf_program__type(prog);
  const char* attach = t == BPF_PROG_TYPE_TRACING || t == BPF_PROG_TYPE_LSM
                           ? libbpf_bpf_attach_type_str(bpf_program__expected_attach_type(prog))
                           : nullptr;
  p.Set("name", bpf_program__name(prog));
  p.Set("section", bpf_program__section_name(prog));
  p.Set("type", type ? type : "unknown");
  p.Set("attachType", attach ? Napi::Value(Napi::String::New(env, attach)) : env.Null());
  p.Set("autoload", bpf_program__autoload(prog));
  p.Set("fd", FdOrNull(env, bpf_program__fd(prog)));
  return p;
}

/** The programs or maps of `obj` (walked with libbpf's `next`), each as `describe` gives it. */
template <typename T, typename Prev>
Napi::Array DescribeAll(Napi::Env env, const bpf_object* obj, T* (*next)(const bpf_object*, Prev*),
                        Napi::Object (*describe)(Napi::Env, const T*)) {
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  for (T* item = next(obj, nullptr); item; item = next(obj, item)) out.Set(i++, describe(env, item));
  return out;
}

}  // namespace

Napi::Value BpfObjectWrap::Programs(const Napi::CallbackInfo& info) {
  return DescribeAll(info.Env(), Open(info.Env(), "programs"), bpf_object__next_program, DescribeProgram);
}

Napi::Value BpfObjectWrap::Maps(const Napi::CallbackInfo& info) {
  return DescribeAll(info.Env(), Open(info.Env(), "maps"), bpf_object__next_map, DescribeMap);
}

Napi::Value BpfObjectWrap::Globals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  for (const GlobalVar& v : ListGlobals(Open(env, "globals"))) {
    Napi::Object g = Napi::Object::New(env);
    g.Set("name", v.name);
    g.Set("section", v.section);
    g.Set("offset", v.offset);
    g.Set("size", v.size);
    g.Set("kind", v.kind);
    g.Set("signed", v.isSigned);
    out.Set(i++, g);
  }
  return out;
}

Napi::Value BpfObjectWrap::SetGlobal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = Open(env, "setGlobal");
  if (info.Length() < 2 || !info[0].IsString()) throw Napi::TypeError::New(env, "setGlobal(name, bytes)");
  std::string name = info[0].As<Napi::String>();
  Bytes bytes = GetBytes(env, info[1], "setGlobal value");
  if (state_->loaded()) throw CodeError(env, "EBUSY", "setGlobal " + name + ": object already loaded");
  std::string error;
  int err = WriteGlobal(obj, name, bytes.data, bytes.size, &error);
  if (err) throw CodeError(env, ErrnoName(-err).c_str(), "setGlobal: " + error);
  return env.Undefined();
}

Napi::Value BpfObjectWrap::SetAutoload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* prog = Program(env, info[0]);
  if (state_->loaded()) throw CodeError(env, "EBUSY", "setAutoload: object already loaded");
  int err = bpf_program__set_autoload(prog, info.Length() > 1 && info[1].ToBoolean());
  if (err) throw ErrnoError(env, err, "setAutoload");
  return env.Undefined();
}

Napi::Value BpfObjectWrap::SetAttachTarget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* prog = Program(env, info[0]);
  if (info.Length() < 2 || !info[1].IsString()) throw Napi::TypeError::New(env, "setAttachTarget(program, function)");
  std::string func = info[1].As<Napi::String>();
  LogCapture capture(captureLevel_);
  int err = bpf_program__set_attach_target(prog, 0, func.c_str());
  if (err) throw ErrnoError(env, err, "setAttachTarget " + func, capture.Text());
  return env.Undefined();
}

Napi::Value BpfObjectWrap::SetMaxEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* map = FindMap(env, info[0]);
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(env, "setMaxEntries(map, count)");
  int err = bpf_map__set_max_entries(map, info[1].As<Napi::Number>().Uint32Value());
  if (err) throw ErrnoError(env, err, "setMaxEntries (object already loaded?)");
  return env.Undefined();
}

Napi::Value BpfObjectWrap::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = Open(env, "load");
  if (state_->loaded()) throw CodeError(env, "EBUSY", "load: object already loaded");
  LogCapture capture(captureLevel_);
  int err = bpf_object__load(obj);
  if (err) throw ErrnoError(env, err, "load " + state_->path(), capture.Text());
  state_->set_loaded();
  return env.Undefined();
}

namespace {

struct AttachResult {
  bpf_link* link;
  std::string target;
};

AttachResult AttachBySpec(Napi::Env env, bpf_program* prog, const std::string& kind, const Napi::Object& spec) {
  if (kind == "auto") return {bpf_program__attach(prog), bpf_program__section_name(prog)};
  if (kind == "tracepoint") {
    std::string category = RequiredString(spec, "category"), name = RequiredString(spec, "name");
    return {bpf_program__attach_tracepoint(prog, category.c_str(), name.c_str()), category + ":" + name};
  }
  if (kind == "raw_tracepoint") {
    std::string name = RequiredString(spec, "name");
    return {bpf_program__attach_raw_tracepoint(prog, name.c_str()), name};
  }
  if (kind == "trace") return {bpf_program__attach_trace(prog), bpf_program__section_name(prog)};
  if (kind == "kprobe") {
    std::string func = RequiredString(spec, "func");
    LIBBPF_OPTS(bpf_kprobe_opts, o);
    o.retprobe = OptionalBool(spec, "retprobe");
    o.offset = static_cast<size_t>(OptionalNumber(spec, "offset", 0));
    return {bpf_program__attach_kprobe_opts(prog, func.c_str(), &o), func};
  }
  if (kind == "uprobe") {
    std::string binary = RequiredString(spec, "binary"), func = OptionalString(spec, "func");
    LIBBPF_OPTS(bpf_uprobe_opts, o);
    o.retprobe = OptionalBool(spec, "retprobe");
    if (!func.empty()) o.func_name = func.c_str();
    pid_t pid = static_cast<pid_t>(OptionalNumber(spec, "pid", -1));
    size_t offset = static_cast<size_t>(OptionalNumber(spec, "offset", 0));
    return {bpf_program__attach_uprobe_opts(prog, pid, binary.c_str(), offset, &o),
            binary + ":" + (func.empty() ? std::to_string(offset) : func)};
  }
  throw Napi::TypeError::New(env, "attach: unknown kind " + kind +
                                      " (auto, tracepoint, raw_tracepoint, trace, kprobe, uprobe)");
}

}  // namespace

Napi::Value BpfObjectWrap::Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* prog = Program(env, info[0]);
  if (info.Length() < 2 || !info[1].IsObject()) throw Napi::TypeError::New(env, "attach(program, spec)");
  Napi::Object spec = info[1].As<Napi::Object>();
  std::string kind = RequiredString(spec, "kind");
  std::string name = bpf_program__name(prog);
  if (!state_->loaded()) throw CodeError(env, "EINVAL", "attach " + name + ": load the object first");
  if (bpf_program__fd(prog) < 0) throw CodeError(env, "EINVAL", "attach " + name + ": program not loaded (autoload off)");
  LogCapture capture(captureLevel_);
  errno = 0;
  AttachResult r = AttachBySpec(env, prog, kind, spec);
  int err = errno;
  if (!r.link) throw ErrnoError(env, err ? err : EINVAL, "attach " + name + " (" + kind + " " + r.target + ")", capture.Text());
  return NewLink(env, r.link, state_.get(), name, kind, r.target);
}

Napi::Value BpfObjectWrap::Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* map = FindMap(env, info[0]);
  return NewMap(env, state_, map);
}

// The layout of a named struct, union, typedef or enum of the object's BTF (ring buffer
// records), or null when the object has none by that name.
Napi::Value BpfObjectWrap::BtfType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = Open(env, "btfType");
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "btfType(name)");
  std::string name = info[0].As<Napi::String>();
  const btf* b = bpf_object__btf(obj);
  return BtfLayout(env, b, FindNamedType(b, name.c_str()));
}

Napi::Value BpfObjectWrap::Close(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), state_ && state_->Close());
}

Napi::Value BpfObjectWrap::GetLoaded(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), state_ && state_->loaded() && state_->obj());
}

Napi::Value BpfObjectWrap::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !state_ || !state_->obj());
}

Napi::Value BpfObjectWrap::GetName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), bpf_object__name(Open(info.Env(), "name")));
}

}  // namespace ebpfnet
