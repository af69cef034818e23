// The enums of the running kernel's BTF (/sys/kernel/btf/vmlinux and the modules' files beside
// it), for names the kernel changes between versions: GSO type bits, drop-reason subsystems
// and their reasons. The blob is walked directly (a few tens of ms for vmlinux; bpftool's dump
// of it takes seconds). A module's file is split BTF: its string offsets continue the base's
// (vmlinux's) string section, so its names are read with the base at hand.
import { readFile } from 'node:fs/promises';

export const BTF_DIR = '/sys/kernel/btf';
const BTF_MAGIC = 0xeb9f;
const KIND_ENUM = 6;
const KIND_ENUM64 = 19;

/** One enum type: its name ('' when anonymous) and its enumerators, name → value. */
export interface BtfEnum {
  name: string;
  values: Array<[string, number]>;
}

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

interface Sections {
  types: number;
  typesEnd: number;
  strings: number;
  stringsLen: number;
}

function sections(btf: Buffer, what: string): Sections {
  if (btf.length < 24 || btf.readUInt16LE(0) !== BTF_MAGIC) throw new Error(`${what}: not a little-endian BTF blob`);
  const hdrLen = btf.readUInt32LE(4);
  const types = hdrLen + btf.readUInt32LE(8);
  return { types, typesEnd: types + btf.readUInt32LE(12), strings: hdrLen + btf.readUInt32LE(16), stringsLen: btf.readUInt32LE(20) };
}

/**
 * Every enum type of the blob `btf` (ENUM and ENUM64; ENUM64 values keep their low 32 bits).
 * `base`: the BTF a split blob (a module's) extends; its string offsets start after the base's.
 */
export function btfEnums(btf: Buffer, base?: Buffer): BtfEnum[] {
  const own = sections(btf, 'BTF');
  const baseSec = base ? sections(base, 'base BTF') : undefined;
  const cstr = (buf: Buffer, at: number) => buf.toString('latin1', at, buf.indexOf(0, at));
  const name = (off: number) => {
    if (base && baseSec) return off < baseSec.stringsLen ? cstr(base, baseSec.strings + off) : cstr(btf, own.strings + off - baseSec.stringsLen);
    return cstr(btf, own.strings + off);
  };
  const out: BtfEnum[] = [];
  for (let at = own.types; at < own.typesEnd; ) {
    const nameOff = btf.readUInt32LE(at);
    const info = btf.readUInt32LE(at + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    at += 12;
    if (kind === KIND_ENUM || kind === KIND_ENUM64) {
      const step = kind === KIND_ENUM ? 8 : 12;
      const values: Array<[string, number]> = [];
      for (let i = 0; i < vlen; i++) values.push([name(btf.readUInt32LE(at + i * step)), btf.readUInt32LE(at + i * step + 4)]);
      out.push({ name: name(nameOff), values });
    }
    at += trailing(kind, vlen);
  }
  return out;
}

/** Every enumerator of the blob `btf` whose name `match`es: name → value. */
export function btfEnumerators(btf: Buffer, match: RegExp): Array<[string, number]> {
  return btfEnums(btf).flatMap((e) => e.values.filter(([n]) => match.test(n)));
}

/** The vmlinux BTF of this kernel (or of `dir`), or null when it cannot be read. */
export async function readVmlinuxBtf(dir = BTF_DIR): Promise<Buffer | null> {
  return readFile(`${dir}/vmlinux`).catch(() => null);
}
