#include "datasec.h"

#include <bpf/btf.h>
#include <errno.h>
#include <string.h>

namespace ebpfnet {

namespace {

void DescribeType(const btf* b, uint32_t typeId, GlobalVar* var) {
  int resolved = btf__resolve_type(b, typeId);  // through const/volatile/typedef
  const btf_type* t = resolved > 0 ? btf__type_by_id(b, resolved) : nullptr;
  if (!t) {
    var->kind = "other";
    return;
  }
  if (btf_is_int(t)) {
    uint8_t enc = btf_int_encoding(t);
    var->kind = (enc & BTF_INT_BOOL) ? "bool" : (enc & BTF_INT_CHAR) ? "char" : "int";
    var->isSigned = (enc & BTF_INT_SIGNED) != 0;
  } else if (btf_is_any_enum(t)) {
    var->kind = "enum";
    var->isSigned = btf_kflag(t);
  } else if (btf_is_array(t)) {
    var->kind = "array";
  } else if (btf_is_struct(t)) {
    var->kind = "struct";
  } else if (btf_is_union(t)) {
    var->kind = "union";
  } else if (btf_is_ptr(t)) {
    var->kind = "pointer";
  } else {
    var->kind = "other";
  }
}

}  // namespace

std::vector<GlobalVar> ListGlobals(const bpf_object* obj) {
  std::vector<GlobalVar> out;
  const btf* b = bpf_object__btf(obj);
  if (!b) return out;
  uint32_t n = btf__type_cnt(b);
  for (uint32_t id = 1; id < n; id++) {
    const btf_type* sec = btf__type_by_id(b, id);
    if (!sec || !btf_is_datasec(sec)) continue;
    const char* secName = btf__name_by_offset(b, sec->name_off);
    // Only sections backed by a map can be written (.kconfig and .ksyms are filled by libbpf).
    if (!secName || !bpf_object__find_map_by_name(obj, secName)) continue;
    const btf_var_secinfo* vs = btf_var_secinfos(sec);
    for (uint16_t i = 0; i < btf_vlen(sec); i++, vs++) {
      const btf_type* v = btf__type_by_id(b, vs->type);
      if (!v || !btf_is_var(v)) continue;
      GlobalVar var;
      var.name = btf__name_by_offset(b, v->name_off);
      var.section = secName;
      var.offset = vs->offset;
      var.size = vs->size;
      DescribeType(b, v->type, &var);
      out.push_back(var);
    }
  }
  return out;
}

int WriteGlobal(bpf_object* obj, const std::string& name, const uint8_t* data, size_t len, std::string* error) {
  for (const GlobalVar& var : ListGlobals(obj)) {
    if (var.name != name) continue;
    if (len != var.size) {
      *error = "global " + name + " is " + std::to_string(var.size) + " bytes, got " + std::to_string(len);
      return -EINVAL;
    }
    bpf_map* map = bpf_object__find_map_by_name(obj, var.section.c_str());
    size_t size = 0;
    const void* initial = map ? bpf_map__initial_value(map, &size) : nullptr;
    if (!initial || static_cast<size_t>(var.offset) + var.size > size) {
      *error = "section " + var.section + " has no initial value holding " + name;
      return -ENOENT;
    }
    // set_initial_value replaces the whole section: copy, patch, write back.
    std::string image(static_cast<const char*>(initial), size);
    memcpy(&image[var.offset], data, len);
    int err = bpf_map__set_initial_value(map, image.data(), image.size());
    if (err) *error = "cannot set " + name + " (object already loaded?)";
    return err;
  }
  *error = "no global variable named " + name;
  return -ENOENT;
}

}  // namespace ebpfnet
