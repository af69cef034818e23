// Encodes values for a BPF object's global variables (`const volatile` filters), using the
// size and kind the addon reads from the object's BTF.
import type { NativeGlobalInfo } from './addon.js';

export type GlobalValue = number | bigint | boolean | Uint8Array;

/** Little-endian bytes of `value` for `global`; throws when it does not fit. */
export function encodeGlobal(global: NativeGlobalInfo, value: GlobalValue): Uint8Array {
  const { name, size, kind } = global;
  if (value instanceof Uint8Array) {
    if (value.length !== size) throw new RangeError(`global ${name} is ${size} bytes, got ${value.length}`);
    return value;
  }
  const scalar = kind === 'int' || kind === 'bool' || kind === 'char' || kind === 'enum';
  if (!scalar || ![1, 2, 4, 8].includes(size)) {
    throw new TypeError(`global ${name} is a ${size}-byte ${kind}: pass its bytes as a Uint8Array`);
  }
  let v: bigint;
  if (typeof value === 'boolean') v = value ? 1n : 0n;
  else if (typeof value === 'bigint') v = value;
  else {
    if (!Number.isInteger(value)) throw new RangeError(`global ${name} takes an integer, got ${value}`);
    v = BigInt(value);
  }
  const bits = BigInt(size * 8);
  const min = global.signed ? -(1n << (bits - 1n)) : 0n;
  const max = global.signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
  if (v < min || v > max) throw new RangeError(`global ${name} (${global.signed ? 's' : 'u'}${bits}) cannot hold ${v}`);
  const out = Buffer.alloc(size);
  let u = BigInt.asUintN(size * 8, v);
  for (let i = 0; i < size; i++, u >>= 8n) out[i] = Number(u & 0xffn);
  return out;
}
