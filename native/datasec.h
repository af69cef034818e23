// Global variables of a BPF object (`const volatile` filters in .rodata, .data, .bss), found
// through the BTF of their data section: what skeletons generate, done at run time instead.
#pragma once
#include <bpf/libbpf.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ebpfnet {

struct GlobalVar {
  std::string name;
  /** The ELF section, also the name of the internal map holding it (".rodata"). */
  std::string section;
  uint32_t offset = 0;
  uint32_t size = 0;
  /** "int", "bool", "char", "enum", "array", "struct", "union", "pointer" or "other". */
  std::string kind;
  bool isSigned = false;
};

/** Every variable of every data section that has a map in the object. */
std::vector<GlobalVar> ListGlobals(const bpf_object* obj);

/**
 * Writes `len` bytes as the initial value of global `name` (before load). Returns 0, or a
 * negative errno with `error` saying why (-ENOENT unknown name, -EINVAL size mismatch,
 * -EBUSY already loaded).
 */
int WriteGlobal(bpf_object* obj, const std::string& name, const uint8_t* data, size_t len, std::string* error);

}  // namespace ebpfnet
