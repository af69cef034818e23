#include "btf-layout.h"

#include <string.h>

#include <string>

namespace ebpfnet {

namespace {

// Nesting deeper than this is no map layout (and guards against malformed BTF).
constexpr int kMaxDepth = 32;

const char* NameOf(const btf* b, const btf_type* t) {
  const char* n = btf__name_by_offset(b, t->name_off);
  return n ? n : "";
}

struct Resolved {
  const btf_type* type = nullptr;
  uint32_t id = 0;
  std::string name;  // the outermost typedef's, else the type's own
  bool bigEndian = false;
};

// Follows typedefs and const/volatile/restrict/type tags to the type they name.
Resolved Resolve(const btf* b, uint32_t id) {
  Resolved r;
  const btf_type* t = btf__type_by_id(b, id);
  while (t && (btf_is_typedef(t) || btf_is_mod(t))) {
    if (btf_is_typedef(t)) {
      const char* n = NameOf(b, t);
      if (r.name.empty()) r.name = n;
      // The kernel's network-order integer types.
      if (!strcmp(n, "__be16") || !strcmp(n, "__be32") || !strcmp(n, "__be64")) r.bigEndian = true;
    }
    id = t->type;
    t = btf__type_by_id(b, id);
  }
  r.type = t;
  r.id = id;
  if (t && r.name.empty()) r.name = NameOf(b, t);
  return r;
}

Napi::Object Describe(Napi::Env env, const btf* b, uint32_t id, int depth);

Napi::Array Members(Napi::Env env, const btf* b, const btf_type* t, int depth) {
  Napi::Array out = Napi::Array::New(env);
  const btf_member* m = btf_members(t);
  for (uint16_t i = 0; i < btf_vlen(t); i++, m++) {
    uint32_t bitOffset = btf_member_bit_offset(t, i);
    uint32_t bitSize = btf_member_bitfield_size(t, i);
    // Without kflag a bitfield is an int whose encoding carries its width and offset.
    Resolved r = Resolve(b, m->type);
    if (!btf_kflag(t) && r.type && btf_is_int(r.type) &&
        (btf_int_offset(r.type) != 0 || btf_int_bits(r.type) != r.type->size * 8)) {
      bitOffset += btf_int_offset(r.type);
      bitSize = btf_int_bits(r.type);
    }
    Napi::Object member = Napi::Object::New(env);
    const char* name = btf__name_by_offset(b, m->name_off);
    member.Set("name", name ? name : "");
    member.Set("bitOffset", bitOffset);
    member.Set("bitSize", bitSize);
    member.Set("type", Describe(env, b, m->type, depth + 1));
    out.Set(i, member);
  }
  return out;
}

Napi::Object Describe(Napi::Env env, const btf* b, uint32_t id, int depth) {
  Napi::Object o = Napi::Object::New(env);
  Resolved r = Resolve(b, id);
  const btf_type* t = r.type;
  o.Set("name", r.name);
  if (!t || depth > kMaxDepth) {
    o.Set("kind", "other");
    o.Set("size", 0);
    return o;
  }
  if (btf_is_int(t)) {
    uint8_t enc = btf_int_encoding(t);
    bool isChar = t->size == 1 && ((enc & BTF_INT_CHAR) || !strcmp(NameOf(b, t), "char"));
    o.Set("kind", (enc & BTF_INT_BOOL) ? "bool" : isChar ? "char" : "int");
    o.Set("size", t->size);
    o.Set("signed", (enc & BTF_INT_SIGNED) != 0);
    if (r.bigEndian) o.Set("bigEndian", true);
  } else if (btf_is_any_enum(t)) {
    o.Set("kind", "enum");
    o.Set("size", t->size);
    o.Set("signed", btf_kflag(t));
  } else if (btf_is_float(t)) {
    o.Set("kind", "float");
    o.Set("size", t->size);
  } else if (btf_is_ptr(t)) {
    o.Set("kind", "pointer");
    o.Set("size", static_cast<uint32_t>(btf__pointer_size(b)));
  } else if (btf_is_array(t)) {
    const struct btf_array* a = btf_array(t);
    __s64 size = btf__resolve_size(b, r.id);
    o.Set("kind", "array");
    o.Set("size", static_cast<double>(size < 0 ? 0 : size));
    o.Set("length", a->nelems);
    o.Set("element", Describe(env, b, a->type, depth + 1));
  } else if (btf_is_composite(t)) {
    o.Set("kind", btf_is_struct(t) ? "struct" : "union");
    o.Set("size", t->size);
    o.Set("members", Members(env, b, t, depth));
  } else {
    o.Set("kind", "other");
    __s64 size = btf__resolve_size(b, r.id);
    o.Set("size", static_cast<double>(size < 0 ? 0 : size));
  }
  return o;
}

}  // namespace

Napi::Value BtfLayout(Napi::Env env, const btf* b, uint32_t typeId) {
  if (!b || typeId == 0) return env.Null();
  return Describe(env, b, typeId, 0);
}

uint32_t FindNamedType(const btf* b, const char* name) {
  if (!b) return 0;
  static const int kinds[] = {BTF_KIND_STRUCT, BTF_KIND_UNION, BTF_KIND_TYPEDEF, BTF_KIND_ENUM, BTF_KIND_ENUM64};
  for (int kind : kinds) {
    __s32 id = btf__find_by_name_kind(b, name, kind);
    if (id > 0) return static_cast<uint32_t>(id);
  }
  return 0;
}

}  // namespace ebpfnet
