/* SPDX-License-Identifier: GPL-2.0 */
/* Puts a struct in the object's BTF so that userspace decodes records of it by name
 * (BpfObject.recordDecoder): clang emits BTF only for the types that maps, globals and function
 * signatures use, not for a ring buffer event built through a pointer. A const null pointer in
 * .rodata that nothing reads. */
#ifndef EBPFNET_BTF_RECORD_H
#define EBPFNET_BTF_RECORD_H

#define BTF_RECORD_TYPE(name) struct name *const btf_record_##name __attribute__((unused)) = 0

#endif
