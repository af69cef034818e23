// Decodes map keys, map values and ring buffer records by the layout the addon reads from the
// object's BTF (native/btf-layout.cc), so probes read fields by their C names instead of byte
// offsets written again in TypeScript.
//
// What each C type becomes:
// - integers (and enums, pointers) of up to 32 bits: number; of 64 bits: number while the value
//   is a safe integer (|v| < 2^53), else bigint. Counts stay far below 2^53 and are typed
//   number; kernel addresses, timestamps (ktime passes 2^53 ns after 104 days of uptime), sums
//   of ns and bit masks may be either: type them `U64` and read them with BigInt(), Number() or
//   String() (a bigint left in a record would not serialise to JSON);
// - the kernel's network-order types (__be16, __be32, __be64) big-endian, every other integer
//   little-endian (the objects are built for little-endian hosts, bpfel);
// - bool: boolean; float/double: number;
// - `char name[N]`: the string up to its first NUL (UTF-8); arrays of other one-byte integers
//   (`__u8 addr[16]`): a Buffer viewing the bytes read; other arrays: arrays;
// - struct: an object by member name (members of anonymous structs and unions are lifted into
//   it), union: every member decoded over the same bytes; bitfields: number.
import type { BtfLayout } from './addon.js';

/** A 64-bit integer as decoded: a number while it is a safe integer, else a bigint. */
export type U64 = number | bigint;

export type Decoded = number | bigint | boolean | string | Buffer | Decoded[] | { [field: string]: Decoded };

/** Decodes the layout's bytes at `offset` of `buf`. */
export type Decoder<T = Decoded> = (buf: Buffer, offset?: number) => T;

type Reader = (buf: Buffer, at: number) => Decoded;

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** The high 32-bit word below which a 64-bit value stays under 2^53. */
const SAFE_HIGH = 0x200000;
const TWO_32 = 0x100000000;

/** A bigint as a number when it is a safe integer. */
function u64Value(v: bigint): U64 {
  return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : v;
}

function int64Reader(signed: boolean, bigEndian: boolean): Reader {
  const [hiAt, loAt] = bigEndian ? [0, 4] : [4, 0];
  const slow = signed
    ? bigEndian
      ? (b: Buffer, at: number) => u64Value(b.readBigInt64BE(at))
      : (b: Buffer, at: number) => u64Value(b.readBigInt64LE(at))
    : bigEndian
      ? (b: Buffer, at: number) => u64Value(b.readBigUInt64BE(at))
      : (b: Buffer, at: number) => u64Value(b.readBigUInt64LE(at));
  // Fast path from two 32-bit words while the high one keeps the value safe.
  return (b, at) => {
    const hi = signed ? (bigEndian ? b.readInt32BE(at + hiAt) : b.readInt32LE(at + hiAt)) : bigEndian ? b.readUInt32BE(at + hiAt) : b.readUInt32LE(at + hiAt);
    if (hi < SAFE_HIGH && hi > -SAFE_HIGH) return hi * TWO_32 + (bigEndian ? b.readUInt32BE(at + loAt) : b.readUInt32LE(at + loAt));
    return slow(b, at);
  };
}

function intReader(size: number, signed: boolean, bigEndian: boolean): Reader {
  switch (size) {
    case 1:
      return signed ? (b, at) => b.readInt8(at) : (b, at) => b.readUInt8(at);
    case 2:
      if (bigEndian) return signed ? (b, at) => b.readInt16BE(at) : (b, at) => b.readUInt16BE(at);
      return signed ? (b, at) => b.readInt16LE(at) : (b, at) => b.readUInt16LE(at);
    case 4:
      if (bigEndian) return signed ? (b, at) => b.readInt32BE(at) : (b, at) => b.readUInt32BE(at);
      return signed ? (b, at) => b.readInt32LE(at) : (b, at) => b.readUInt32LE(at);
    case 8:
      return int64Reader(signed, bigEndian);
    default: // __int128 and the like
      return (b, at) => u64Value(bytesToBigInt(b, at, size * 8, 0, signed));
  }
}

/** `bits` bits from bit `bitOffset` (counted from the lowest) of the little-endian bytes at `at`. */
function bytesToBigInt(b: Buffer, at: number, bits: number, bitOffset: number, signed: boolean): bigint {
  const first = at + Math.floor(bitOffset / 8);
  const span = Math.ceil(((bitOffset % 8) + bits) / 8);
  let v = 0n;
  for (let i = span - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[first + i]!);
  v = BigInt.asUintN(bits, v >> BigInt(bitOffset % 8));
  return signed ? BigInt.asIntN(bits, v) : v;
}

function cString(b: Buffer, at: number, length: number): string {
  const nul = b.indexOf(0, at);
  return b.toString('utf8', at, nul < 0 || nul > at + length ? at + length : nul);
}

function arrayReader(layout: BtfLayout): Reader {
  const element = layout.element!;
  const length = layout.length ?? 0;
  if (element.kind === 'char') return (b, at) => cString(b, at, length);
  if (element.kind === 'int' && element.size === 1) return (b, at) => b.subarray(at, at + length);
  const read = reader(element);
  const stride = element.size;
  return (b, at) => {
    const out = new Array<Decoded>(length);
    for (let i = 0; i < length; i++) out[i] = read(b, at + i * stride);
    return out;
  };
}

/** Writes a member's value (or, for an anonymous struct or union, its members) into `out`. */
type Setter = (b: Buffer, at: number, out: Record<string, Decoded>) => void;

function memberSetters(layout: BtfLayout): Setter[] {
  return (layout.members ?? []).map((m): Setter => {
    const { name, type } = m;
    if (m.bitSize > 0) {
      const signed = type.signed === true;
      return (b, at, out) => {
        out[name] = Number(bytesToBigInt(b, at, m.bitSize, m.bitOffset, signed));
      };
    }
    const offset = m.bitOffset / 8;
    if (name === '' && (type.kind === 'struct' || type.kind === 'union')) {
      const inner = memberSetters(type);
      return (b, at, out) => {
        for (const set of inner) set(b, at + offset, out);
      };
    }
    const read = reader(type);
    return (b, at, out) => {
      out[name] = read(b, at + offset);
    };
  });
}

function reader(layout: BtfLayout): Reader {
  switch (layout.kind) {
    case 'int':
    case 'enum':
    case 'char':
      return intReader(layout.size, layout.signed === true, layout.bigEndian === true);
    case 'pointer':
      return intReader(layout.size, false, false);
    case 'bool':
      return (b, at) => b.subarray(at, at + layout.size).some((x) => x !== 0);
    case 'float':
      return layout.size === 4 ? (b, at) => b.readFloatLE(at) : (b, at) => b.readDoubleLE(at);
    case 'array':
      return arrayReader(layout);
    case 'struct':
    case 'union': {
      const setters = memberSetters(layout);
      return (b, at) => {
        const out: Record<string, Decoded> = {};
        for (const set of setters) set(b, at, out);
        return out;
      };
    }
    default:
      return (b, at) => b.subarray(at, at + layout.size);
  }
}

/** A decoder for `layout`; it throws a RangeError when fewer bytes than the layout's size remain. */
export function compileLayout<T = Decoded>(layout: BtfLayout, what = layout.name || layout.kind): Decoder<T> {
  const read = reader(layout);
  const size = layout.size;
  return (buf, offset = 0) => {
    if (buf.length - offset < size) throw new RangeError(`${what}: ${buf.length - offset} bytes, its layout needs ${size}`);
    return read(buf, offset) as T;
  };
}

function isNumeric(v: unknown): v is number | bigint {
  return typeof v === 'number' || typeof v === 'bigint';
}

function add(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'number' && typeof b === 'number') {
    const sum = a + b;
    if (Number.isSafeInteger(sum) || !Number.isInteger(a) || !Number.isInteger(b)) return sum;
  }
  return u64Value(BigInt(a) + BigInt(b));
}

function combine(a: unknown, b: unknown, max: ReadonlySet<string>, top: boolean): unknown {
  if (isNumeric(a) && isNumeric(b)) return add(a, b);
  if (Array.isArray(a) && Array.isArray(b)) return a.map((x, i) => combine(x, b[i], max, false));
  if (a !== null && typeof a === 'object' && !(a instanceof Uint8Array) && b !== null && typeof b === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(a)) {
      const w = (b as Record<string, unknown>)[k];
      out[k] = top && max.has(k) && isNumeric(v) && isNumeric(w) ? (w > v ? w : v) : combine(v, w, max, false);
    }
    return out;
  }
  return a; // strings, bytes, booleans: the first CPU's
}

/**
 * One value of a per-CPU map from each CPU's: numbers summed field by field (arrays element
 * by element), except the top-level fields named in `max`, whose largest value is kept;
 * strings, bytes and booleans are the first CPU's. A sum that passes 2^53 becomes a bigint.
 */
export function sumPerCpu<T>(values: readonly T[], opts: { max?: readonly string[] } = {}): T {
  if (values.length === 0) throw new RangeError('sumPerCpu: no values');
  const max = new Set(opts.max ?? []);
  return values.slice(1).reduce<unknown>((acc, v) => combine(acc, v, max, true), values[0]) as T;
}
