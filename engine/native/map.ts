// A map of a loaded BpfObject: byte-level access, and entries decoded by the BTF types the map
// was declared with (engine/native/btf-layout.ts says what each C type becomes).
import type { NativeMap, NativeMapInfo } from './addon.js';
import { compileLayout, type Decoded, type Decoder } from './btf-layout.js';
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
  /** Compiled on first use: the key's and the value's (one CPU's for per-CPU maps). */
  private decoders: { key: Decoder | null; value: Decoder | null } | undefined;

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

  /** Every entry, key and value decoded by their BTF types (not for per-CPU maps: readAllPerCpu). */
  readAllDecoded<K = Decoded, V = Decoded>(): Array<{ key: K; value: V }> {
    const { key, value } = this.decoding(false);
    const { keys, values, count } = nativeCall(() => this.native.readAll());
    const out = new Array<{ key: K; value: V }>(count);
    const ks = keys.length / count;
    const vs = values.length / count;
    for (let i = 0; i < count; i++) out[i] = { key: key(keys, i * ks) as K, value: value(values, i * vs) as V };
    return out;
  }

  /** Every entry of a per-CPU map: its key and one value per possible CPU, decoded (sum them with sumPerCpu). */
  readAllPerCpu<K = Decoded, V = Decoded>(): Array<{ key: K; values: V[] }> {
    const { key, value } = this.decoding(true);
    const { keys, values, count } = nativeCall(() => this.native.readAll());
    const out = new Array<{ key: K; values: V[] }>(count);
    const ks = keys.length / count;
    const vs = values.length / count;
    const stride = this.cpuStride();
    for (let i = 0; i < count; i++) {
      const cpus = new Array<V>(vs / stride);
      for (let c = 0; c < cpus.length; c++) cpus[c] = value(values, i * vs + c * stride) as V;
      out[i] = { key: key(keys, i * ks) as K, values: cpus };
    }
    return out;
  }

  /** The value of a per-CPU map under `key`, one per possible CPU, decoded; null when absent. */
  lookupPerCpu<V = Decoded>(key: Uint8Array): V[] | null {
    const { value } = this.decoding(true);
    const raw = this.lookup(key);
    if (!raw) return null;
    const stride = this.cpuStride();
    return Array.from({ length: raw.length / stride }, (_, c) => value(raw, c * stride) as V);
  }

  /** The key and value decoders; throws when the map is not of the kind asked or a side has no BTF type. */
  private decoding(perCpu: boolean): { key: Decoder; value: Decoder } {
    const info = this.info;
    if (info.perCpu !== perCpu) {
      throw new Error(`map ${this.name} is ${info.perCpu ? '' : 'not '}per-CPU: read it with ${info.perCpu ? 'readAllPerCpu/lookupPerCpu' : 'readAllDecoded'}`);
    }
    if (!this.decoders) {
      const layout = nativeCall(() => this.native.layout());
      this.decoders = {
        key: layout.key && compileLayout(layout.key, `map ${this.name} key`),
        value: layout.value && compileLayout(layout.value, `map ${this.name} value`),
      };
    }
    const { key, value } = this.decoders;
    if (!key || !value) throw new Error(`map ${this.name} has no BTF type for its ${key ? 'value' : 'key'} (declared by size: decode its bytes)`);
    return { key, value };
  }

  /** Bytes between two CPUs' values in a per-CPU lookup (each rounded up to 8). */
  private cpuStride(): number {
    return Math.ceil(this.info.valueSize / 8) * 8;
  }

  /** A per-CPU lookup result split into one value per possible CPU. */
  perCpu(value: Buffer): Buffer[] {
    const { valueSize, lookupSize } = this.info;
    const stride = this.cpuStride();
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
