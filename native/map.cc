#include "map.h"

#include <bpf/bpf.h>
#include <errno.h>

#include <algorithm>
#include <vector>

#include "addon.h"
#include "btf-layout.h"
#include "errors.h"
#include "values.h"

namespace ebpfnet {

namespace {

struct MapInit {
  std::shared_ptr<ObjectState> state;
  bpf_map* map;
};

bool IsPerCpu(enum bpf_map_type t) {
  return t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
         t == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

// Kernels answer EINVAL, ENOTSUPP (524, kernel-internal) or EOPNOTSUPP for maps without batch ops.
bool NoBatchSupport(int err) { return err == EINVAL || err == 524 || err == EOPNOTSUPP || err == ENOTSUP; }

// What a call that fills `out` for a key returned: a copy of it, null when there was no such key.
Napi::Value FoundOrNull(Napi::Env env, int err, const std::vector<uint8_t>& out, const char* what, bpf_map* map) {
  if (err == -ENOENT) return env.Null();
  if (err) throw ErrnoError(env, err, std::string(what) + " in " + bpf_map__name(map));
  return Napi::Buffer<uint8_t>::Copy(env, out.data(), out.size());
}

}  // namespace

Napi::Function MapWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeMap",
                     {
                         InstanceMethod<&MapWrap::Lookup>("lookup"),
                         InstanceMethod<&MapWrap::Update>("update"),
                         InstanceMethod<&MapWrap::Delete>("delete"),
                         InstanceMethod<&MapWrap::NextKey>("nextKey"),
                         InstanceMethod<&MapWrap::ReadAll>("readAll"),
                         InstanceMethod<&MapWrap::Layout>("layout"),
                         InstanceAccessor<&MapWrap::GetInfo>("info"),
                     });
}

MapWrap::MapWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MapWrap>(info) {
  auto* init = InitData<MapInit>(info, "NativeMap is created by NativeObject.map()");
  state_ = init->state;
  map_ = init->map;
}

bpf_map* MapWrap::Live(Napi::Env env, const char* what) const {
  std::string name = state_->obj() ? bpf_map__name(map_) : "map";
  if (!state_->obj()) throw CodeError(env, "ECLOSED", std::string(what) + " " + name + ": its object is closed");
  if (!state_->loaded() || bpf_map__fd(map_) < 0)
    throw CodeError(env, "EINVAL", std::string(what) + " " + name + ": load the object first");
  return map_;
}

size_t MapWrap::ValueBytes() const {
  size_t v = bpf_map__value_size(map_);
  if (!IsPerCpu(bpf_map__type(map_))) return v;
  return ((v + 7) / 8) * 8 * static_cast<size_t>(libbpf_num_possible_cpus());
}

Napi::Value MapWrap::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* map = Live(env, "lookup");
  Bytes key = GetBytes(env, info[0], "lookup key");
  std::vector<uint8_t> value(ValueBytes());
  int err = bpf_map__lookup_elem(map, key.data, key.size, value.data(), value.size(), 0);
  return FoundOrNull(env, err, value, "lookup", map);
}

Napi::Value MapWrap::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* map = Live(env, "update");
  Bytes key = GetBytes(env, info[0], "update key");
  Bytes value = GetBytes(env, info[1], "update value");
  uint64_t flags = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 0;
  int err = bpf_map__update_elem(map, key.data, key.size, value.data, value.size, flags);
  if (err) throw ErrnoError(env, err, std::string("update in ") + bpf_map__name(map));
  return env.Undefined();
}

Napi::Value MapWrap::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* map = Live(env, "delete");
  Bytes key = GetBytes(env, info[0], "delete key");
  int err = bpf_map__delete_elem(map, key.data, key.size, 0);
  if (err == -ENOENT) return Napi::Boolean::New(env, false);
  if (err) throw ErrnoError(env, err, std::string("delete in ") + bpf_map__name(map));
  return Napi::Boolean::New(env, true);
}

Napi::Value MapWrap::NextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* map = Live(env, "nextKey");
  size_t keySize = bpf_map__key_size(map);
  const void* cur = nullptr;
  Bytes prev{nullptr, 0};
  if (info.Length() > 0 && !info[0].IsNull() && !info[0].IsUndefined()) {
    prev = GetBytes(env, info[0], "nextKey key");
    if (prev.size != keySize) throw CodeError(env, "EINVAL", "nextKey: key must be " + std::to_string(keySize) + " bytes");
    cur = prev.data;
  }
  std::vector<uint8_t> next(keySize);
  int err = bpf_map__get_next_key(map, cur, next.data(), keySize);
  return FoundOrNull(env, err, next, "nextKey", map);
}

// Every entry as { keys, values, count, batched }: one BPF_MAP_LOOKUP_BATCH pass where the
// kernel supports it for this map type, otherwise key iteration plus lookups (entries added
// or removed meanwhile may be missed, as with any iteration).
Napi::Value MapWrap::ReadAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* map = Live(env, "readAll");
  int fd = bpf_map__fd(map);
  size_t keySize = bpf_map__key_size(map), valueSize = ValueBytes();
  size_t chunk = std::max<size_t>(1, std::min<size_t>(bpf_map__max_entries(map), 4096));
  std::vector<uint8_t> keys, values;
  size_t count = 0;
  bool batched = true;

  std::vector<uint8_t> inBatch(std::max<size_t>(keySize, 8)), outBatch(inBatch.size());
  bool first = true;
  for (;;) {
    keys.resize((count + chunk) * keySize);
    values.resize((count + chunk) * valueSize);
    uint32_t n = static_cast<uint32_t>(chunk);
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err = bpf_map_lookup_batch(fd, first ? nullptr : inBatch.data(), outBatch.data(), &keys[count * keySize],
                                   &values[count * valueSize], &n, &opts);
    int e = err ? errno : 0;
    if (err && e == ENOSPC && n == 0) {  // a hash bucket holds more than `chunk` entries
      chunk *= 2;
      continue;
    }
    if (err && e != ENOENT) {
      if (first && NoBatchSupport(e)) {
        batched = false;
        break;
      }
      throw ErrnoError(env, e, std::string("batch lookup in ") + bpf_map__name(map));
    }
    count += n;
    first = false;
    if (err) break;  // ENOENT: no more entries
    inBatch = outBatch;
  }

  if (!batched) {
    count = 0;
    keys.clear();
    values.clear();
    std::vector<uint8_t> key(keySize), next(keySize), value(valueSize);
    const void* cur = nullptr;
    for (;;) {
      int step = bpf_map__get_next_key(map, cur, next.data(), keySize);
      if (step == -ENOENT) break;
      if (step) throw ErrnoError(env, step, std::string("iterate ") + bpf_map__name(map));
      key = next;
      cur = key.data();
      int err = bpf_map__lookup_elem(map, key.data(), keySize, value.data(), valueSize, 0);
      if (err == -ENOENT) continue;  // deleted meanwhile
      if (err) throw ErrnoError(env, err, std::string("lookup in ") + bpf_map__name(map));
      keys.insert(keys.end(), key.begin(), key.end());
      values.insert(values.end(), value.begin(), value.end());
      count++;
    }
  }

  Napi::Object out = Napi::Object::New(env);
  out.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), count * keySize));
  out.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), count * valueSize));
  out.Set("count", Napi::Number::New(env, static_cast<double>(count)));
  out.Set("batched", Napi::Boolean::New(env, batched));
  return out;
}

Napi::Value MapWrap::GetInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!state_->obj()) throw CodeError(env, "ECLOSED", "map info: its object is closed");
  Napi::Object o = DescribeMap(env, map_);
  o.Set("lookupSize", Napi::Number::New(env, static_cast<double>(ValueBytes())));
  return o;
}

// { key, value }: the BTF layouts the map was declared with (`__type(key, ...)`), null for a
// side declared by size only (`__uint(key_size, ...)`) or without one (ring buffers).
Napi::Value MapWrap::Layout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!state_->obj()) throw CodeError(env, "ECLOSED", "map layout: its object is closed");
  const btf* b = bpf_object__btf(state_->obj());
  MapBtfIds ids = state_->btfIds(map_);
  Napi::Object o = Napi::Object::New(env);
  o.Set("key", BtfLayout(env, b, ids.key));
  o.Set("value", BtfLayout(env, b, ids.value));
  return o;
}

Napi::Object NewMap(Napi::Env env, const std::shared_ptr<ObjectState>& state, bpf_map* map) {
  MapInit init{state, map};
  return Constructors(env).map.New({Napi::External<MapInit>::New(env, &init)});
}

Napi::Object DescribeMap(Napi::Env env, const bpf_map* map) {
  Napi::Object m = Napi::Object::New(env);
  enum bpf_map_type type = bpf_map__type(map);
  const char* typeName = libbpf_bpf_map_type_str(type);
  m.Set("name", bpf_map__name(map));
  m.Set("type", typeName ? typeName : "unknown");
  m.Set("keySize", bpf_map__key_size(map));
  m.Set("valueSize", bpf_map__value_size(map));
  m.Set("maxEntries", bpf_map__max_entries(map));
  m.Set("perCpu", IsPerCpu(type));
  m.Set("internal", bpf_map__is_internal(map));
  m.Set("fd", FdOrNull(env, bpf_map__fd(map)));
  return m;
}

}  // namespace ebpfnet
