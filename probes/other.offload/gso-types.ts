// Names of the bits of skb_shinfo()->gso_type (SKB_GSO_TCPV4, ...), read from the running
// kernel's BTF: the anonymous enum that declares them changed between kernels (6.18 moved
// TCP_FIXEDID to bit 30 and added TCP_ACCECN), so the bits are never hard-coded here. The BTF
// is walked directly (a few tens of ms; bpftool's dump of it takes seconds).
import { readFile } from 'node:fs/promises';
import type { ProbeIO } from '../../engine/probe/types.js';

const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';
const BTF_MAGIC = 0xeb9f;
const KIND_ENUM = 6;
const KIND_ENUM64 = 19;

/** Bit number → name without the `SKB_GSO_` prefix (`0` → `TCPV4`). */
export type GsoTypeNames = Record<string, string>;

/** Bytes that follow a type's 12-byte header in the type section, by BTF kind (linux/btf.h). */
function trailing(kind: number, vlen: number): number {
  switch (kind) {
    case 1: case 14: case 17: return 4; // INT, VAR, DECL_TAG
    case 3: return 12; // ARRAY
    case 4: case 5: case 15: case 19: return vlen * 12; // STRUCT, UNION, DATASEC, ENUM64
    case 6: case 13: return vlen * 8; // ENUM, FUNC_PROTO
    default: return 0;
  }
}

/** Every enumerator of the BTF blob `btf` (little-endian) named by `match`: name → value. */
export function btfEnumerators(btf: Buffer, match: RegExp): Array<[string, number]> {
  if (btf.readUInt16LE(0) !== BTF_MAGIC) throw new Error('not a little-endian BTF blob');
  const hdrLen = btf.readUInt32LE(4);
  const types = hdrLen + btf.readUInt32LE(8);
  const typesEnd = types + btf.readUInt32LE(12);
  const strings = hdrLen + btf.readUInt32LE(16);
  const name = (off: number) => btf.toString('latin1', strings + off, btf.indexOf(0, strings + off));
  const out: Array<[string, number]> = [];
  for (let at = types; at < typesEnd; ) {
    const info = btf.readUInt32LE(at + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    at += 12;
    if (kind === KIND_ENUM || kind === KIND_ENUM64) {
      const step = kind === KIND_ENUM ? 8 : 12;
      for (let i = 0; i < vlen; i++) {
        const n = name(btf.readUInt32LE(at + i * step));
        if (match.test(n)) out.push([n, btf.readUInt32LE(at + i * step + 4)]); // ENUM64: the low 32 bits
      }
    }
    at += trailing(kind, vlen);
  }
  return out;
}

/** SKB_GSO_* enumerators → bit names; a bit with two names (`__SKB_GSO_TCP_FIXEDID` beside the public one) keeps the public one; a private one keeps its underscores. */
export function gsoTypeNames(enumerators: Array<[string, number]>): GsoTypeNames {
  const out: GsoTypeNames = {};
  for (const [full, raw] of enumerators) {
    const m = /^(_*)SKB_GSO_([A-Z0-9_]+)$/.exec(full);
    const value = raw >>> 0;
    if (!m || value === 0 || (value & (value - 1)) !== 0) continue; // a mask, not one bit
    const bit = String(31 - Math.clz32(value));
    if (out[bit] === undefined || m[1] === '') out[bit] = `${m[1]}${m[2]}`;
  }
  return out;
}

/** Records the names as the capture `gso-types` (an empty map when the BTF cannot be read). */
export async function captureGsoTypes(io: ProbeIO): Promise<void> {
  await io.capture('gso-types', async () => {
    const btf = await readFile(VMLINUX_BTF).catch(() => null);
    return JSON.stringify(btf ? gsoTypeNames(btfEnumerators(btf, /SKB_GSO_/)) : {});
  });
}

/** The names of the set bits of `mask` (`bit 21` for a bit the kernel does not name). */
export function gsoTypeList(mask: number, names: GsoTypeNames): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 32; bit++) if ((mask >>> bit) & 1) out.push(gsoBitName(bit, names));
  return out;
}

function gsoBitName(bit: number, names: GsoTypeNames): string {
  return names[String(bit)] ?? `bit ${bit}`;
}
