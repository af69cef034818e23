// The layout of a BTF type (a map's key or value, a ring buffer record) as a plain JavaScript
// object, so that engine/native/btf-layout.ts decodes bytes by C field names.
#pragma once
#include <bpf/btf.h>
#include <napi.h>

#include <cstdint>

namespace ebpfnet {

/**
 * { kind, name, size } and, by kind: int/enum `signed` (int: `bigEndian` for the __be16/32/64
 * typedefs), array `length` and `element`, struct/union `members` ({ name, bitOffset, bitSize,
 * type }, bitSize 0 unless a bitfield). Kinds: int, char, bool, enum, float, pointer, array,
 * struct, union, other. Typedefs and const/volatile are resolved; `name` is the outermost
 * typedef's (`__u64`) or the struct's. Null for type id 0 (no BTF type).
 */
Napi::Value BtfLayout(Napi::Env env, const btf* b, uint32_t typeId);

/** A struct, union, typedef or enum of the object's BTF by name; 0 when there is none. */
uint32_t FindNamedType(const btf* b, const char* name);

}  // namespace ebpfnet
