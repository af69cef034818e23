// A map of a loaded BpfObject: byte-level access plus the few decodings every probe needs.
import type { NativeMap, NativeMapInfo } from './addon.js';
import { nativeCall } from './errors.js';

/** bpf_map_update_elem flags. */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

/** A 4-byte little-endian key (array indexes, stack ids, enum keys). */
export function u32Key(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

export class BpfMap {
  /** @internal Created by BpfObject.map(). */
  constructor(
    /** @internal */ readonly native: NativeMap,
    readonly name: string,
  ) {}

  /** Type, sizes and `lookupSize` (the bytes a lookup returns: per CPU for per-CPU maps). */
  get info(): NativeMapInfo & { lookupSize: number } {
    return nativeCall(() => this.native.info);
  }

  /** The value under `key`, or null when there is none. */
  lookup(key: Uint8Array): Buffer | null {
    return nativeCall(() => this.native.lookup(key));
  }

  update(key: Uint8Array, value: Uint8Array, flags = BPF_ANY): void {
    nativeCall(() => this.native.update(key, value, flags));
  }

  /** False when the key was not there. */
  delete(key: Uint8Array): boolean {
    return nativeCall(() => this.native.delete(key));
  }

  /** Every key, in the kernel's order. */
  *keys(): Generator<Buffer> {
    let key: Buffer | null = null;
    while ((key = nativeCall(() => this.native.nextKey(key))) !== null) yield key;
  }

  /**
   * Every entry, read in one batch system call where the kernel supports it for this map
   * type (`batched`), else by iterating keys.
   */
  readAll(): { entries: Array<[Buffer, Buffer]>; batched: boolean } {
    const { keys, values, count, batched } = nativeCall(() => this.native.readAll());
    const ks = count ? keys.length / count : 0;
    const vs = count ? values.length / count : 0;
    const entries: Array<[Buffer, Buffer]> = [];
    for (let i = 0; i < count; i++) {
      entries.push([keys.subarray(i * ks, (i + 1) * ks), values.subarray(i * vs, (i + 1) * vs)]);
    }
    return { entries, batched };
  }

  /** A per-CPU lookup result split into one value per possible CPU. */
  perCpu(value: Buffer): Buffer[] {
    const { valueSize, lookupSize } = this.info;
    const stride = Math.ceil(valueSize / 8) * 8;
    const out: Buffer[] = [];
    for (let off = 0; off + stride <= lookupSize && off + stride <= value.length; off += stride) {
      out.push(value.subarray(off, off + valueSize));
    }
    return out;
  }

  /** A u64 counter under `key`, summed over CPUs for per-CPU maps; 0n when absent. */
  sumU64(key: Uint8Array): bigint {
    const value = this.lookup(key);
    if (!value) return 0n;
    const parts = this.info.perCpu ? this.perCpu(value) : [value];
    return parts.reduce((sum, v) => sum + v.readBigUInt64LE(0), 0n);
  }

  /** A stack of a stack-trace map: instruction pointers, innermost first; [] when absent. */
  readStack(stackId: number): bigint[] {
    if (stackId < 0) return [];
    const value = this.lookup(u32Key(stackId));
    if (!value) return [];
    const ips: bigint[] = [];
    for (let off = 0; off + 8 <= value.length; off += 8) {
      const ip = value.readBigUInt64LE(off);
      if (ip === 0n) break;
      ips.push(ip);
    }
    return ips;
  }
}
